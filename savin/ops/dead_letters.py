"""Dead letters: list them, and send each back to its source topic once.

A replay is recorded on the compacted ``dead-letter-replays`` topic, keyed by
the dead letter's id, so running replay again sends only what was never sent.
The replayed record carries the :data:`~savin.schemas.notices.REPLAY_HEADER`
header (the dead letter's id); if it fails again, the stage's new dead letter
points back to this one (``replay_of``) and can itself be replayed once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.ops.reading import read_topic, topic_partitions
from savin.schemas import DeadLetter, DeadLetterReplay
from savin.schemas.notices import REPLAY_HEADER
from savin.settings import Settings
from savin.topics import Topics, ensure_topics, producer

__all__ = ["Selection", "Entry", "Listing", "ReplayReport", "parse_when", "list_dead_letters", "dead_letter_entries",
           "replay_dead_letters"]

_RELATIVE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d|w)")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: dt.datetime) -> dt.datetime:
    """``2h``, ``30m``, ``7d`` (that long before ``now``), or an ISO date or
    date-time; one without an offset is UTC."""
    text = text.strip()
    if m := _RELATIVE.fullmatch(text):
        return now - dt.timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a time like 2026-11-20T14:05:00-06:00 or 2026-11-20 "
                         "nor a span like 30m, 2h, 7d or 1w") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command is about; an empty selection is all of them."""

    ids: frozenset[str] = frozenset()
    #: Part of the reason, in any case.
    reason: str | None = None
    #: The source topic, with or without the namespace.
    topic: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def matches(self, letter: DeadLetter, namespace: str) -> bool:
        if self.ids and str(letter.dead_letter_id) not in self.ids:
            return False
        if self.reason and self.reason.casefold() not in letter.reason.casefold():
            return False
        if self.topic and letter.source_topic not in (self.topic, f"{namespace}.{self.topic}"):
            return False
        if self.since and letter.at < self.since:
            return False
        return not (self.until and letter.at > self.until)


@dataclass(frozen=True)
class Entry:
    """A dead letter and whether (and where) it was replayed."""

    letter: DeadLetter
    replay: DeadLetterReplay | None = None

    @property
    def id(self) -> str:
        return str(self.letter.dead_letter_id)

    @property
    def source(self) -> str:
        d = self.letter
        return f"{d.source_topic} partition {d.source_partition} offset {d.source_offset}"

    @property
    def refusal(self) -> str | None:
        """Why this letter cannot be replayed, or None."""
        d = self.letter
        if d.value_truncated:
            return (f"it holds only an excerpt of the {d.value_size}-byte record, which is not sent on; "
                    f"the whole record is at {self.source} while that topic keeps it")
        if d.value_sha256 and hashlib.sha256(self.value).hexdigest() != d.value_sha256:
            return f"its copy of the record does not match the record's SHA-256; the original is at {self.source}"
        return None

    @property
    def key(self) -> bytes | None:
        return base64.b64decode(self.letter.key_b64) if self.letter.key_b64 is not None else None

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.letter.value_b64)

    def summary(self) -> dict:
        """The letter without its content, for listings."""
        out = self.letter.model_dump(mode="json", exclude={"key_b64", "value_b64"})
        out["replayed_at"] = self.replay.at.isoformat() if self.replay else None
        out["replayed_to"] = (f"{self.replay.to_topic}[{self.replay.to_partition}]@{self.replay.to_offset}"
                              if self.replay else None)
        out["replayable"] = self.replay is None and self.refusal is None
        return out


@dataclass
class ReplayReport:
    #: Sent back now (or, in a dry run, would be).
    sent: list[Entry] = field(default_factory=list)
    #: Selected, but replayed before: not sent again.
    already: list[Entry] = field(default_factory=list)
    #: Selected, but not replayable: (entry, why).
    refused: list[tuple[Entry, str]] = field(default_factory=list)
    dry_run: bool = False


@dataclass
class Listing:
    """The selected dead letters, oldest first, and how many records on the
    topics could not be read at all (they are counted, never skipped silently)."""

    entries: list[Entry]
    unreadable: int = 0


async def _read(bootstrap: str, topic: str, model) -> tuple[list, int]:
    parsed, unreadable = [], 0
    async for r in read_topic(bootstrap, topic):
        if r.value is None:  # a tombstone on a compacted topic
            continue
        try:
            parsed.append(model.model_validate_json(r.value))
        except ValidationError:
            unreadable += 1
    return parsed, unreadable


async def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    letters, _ = await _read(settings.kafka_bootstrap, Topics(settings).dead_letters, DeadLetter)
    return letters


async def dead_letter_entries(settings: Settings, selection: Selection = Selection()) -> Listing:
    """The selected dead letters, each with its replay if it had one."""
    topics = Topics(settings)
    letters, bad_letters = await _read(settings.kafka_bootstrap, topics.dead_letters, DeadLetter)
    replays, bad_replays = await _read(settings.kafka_bootstrap, topics.dead_letter_replays, DeadLetterReplay)
    # Keyed by id: should a letter have been recorded twice, the first replay is the one that counts.
    first: dict[str, DeadLetterReplay] = {}
    for r in replays:
        first.setdefault(str(r.dead_letter_id), r)
    entries = [Entry(d, first.get(str(d.dead_letter_id))) for d in letters if selection.matches(d, settings.namespace)]
    return Listing(entries, bad_letters + bad_replays)


def _plan(entries: Iterable[Entry], report: ReplayReport) -> None:
    for e in entries:
        if e.replay is not None:
            report.already.append(e)
        elif (why := e.refusal) is not None:
            report.refused.append((e, why))
        else:
            report.sent.append(e)


async def replay_dead_letters(settings: Settings, selection: Selection = Selection(), *,
                              dry_run: bool = False) -> ReplayReport:
    """Send the selected dead letters that were never replayed back to their
    source topic and partition, key and bytes unchanged, and record each replay.

    The record goes first and its replay is recorded once Kafka has it: a crash
    in between can send a letter twice, which the match stage's seen event ids
    and the deliver stage's ledger absorb; the other order could lose it.
    """
    report = ReplayReport(dry_run=dry_run)
    _plan((await dead_letter_entries(settings, selection)).entries, report)
    if not report.sent:
        return report
    partitions = await topic_partitions(settings.kafka_bootstrap, {e.letter.source_topic for e in report.sent})
    ready = []
    for e in report.sent:
        count = partitions.get(e.letter.source_topic)
        if count is None:
            report.refused.append((e, f"its source topic {e.letter.source_topic} does not exist"))
        elif e.letter.source_partition >= count:
            report.refused.append(
                (e, f"its source topic {e.letter.source_topic} has no partition {e.letter.source_partition}"))
        else:
            ready.append(e)
    report.sent = ready
    if dry_run or not ready:
        return report
    topics = Topics(settings)
    await ensure_topics(settings.kafka_bootstrap, topics.specs(), settings.replication_factor)
    prod = producer(settings.kafka_bootstrap)
    try:
        await prod.start()
        sends = [await prod.send(e.letter.source_topic, e.value, key=e.key, partition=e.letter.source_partition,
                                 headers=[(REPLAY_HEADER, e.id.encode())]) for e in ready]
        marks = []
        for e, fut in zip(ready, sends):
            meta = await fut
            replay = DeadLetterReplay(dead_letter_id=e.letter.dead_letter_id, to_topic=meta.topic,
                                      to_partition=meta.partition, to_offset=meta.offset, at=utcnow())
            marks.append((e, replay, await prod.send(topics.dead_letter_replays,
                                                     replay.model_dump_json().encode(), key=e.id.encode())))
        report.sent = []
        for e, replay, fut in marks:
            await fut
            report.sent.append(Entry(e.letter, replay))
    finally:
        await prod.stop()
    return report
