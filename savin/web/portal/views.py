"""The web process's local views: replicas of compacted topics, read whole.

Each ``savin web`` process reads every partition of the topics it shows by
assignment, with no consumer group, so any number of them run side by side
and each holds everything. A view lives in one local store (RocksDB under
``SAVIN_DATA_DIR/web``, or memory) with the next offset of each partition it
has applied, written in the same batch as the records; a restart reads only
what it missed, a new machine rebuilds the views from Kafka. The views are
ready once they hold everything that was on the topics when they started;
after that they keep tailing.

Views:

* ``offender-status``: :class:`OffenderStatus` by offender id, with a token
  index of offender names for the search;
* ``registrations``: :class:`StoredRegistration` by registration id, and the
  ids of the registrations holding each contact's blind index;
* ``verifications``: the latest :class:`Verification` of each contact slot;
* ``attempts``: the latest :class:`Attempts` of each rate-limited key;
* ``consent``: the latest :class:`ConsentChange` of each contact slot;
* ``calls``: the :class:`CallRecord` of each call, by call id (its notice id);
* ``escalations``: the :class:`Escalation` of each (registration, event), by
  registration, so the notices waiting for an acknowledgement are found.

A process that writes a record waits for its own view to hold it
(:meth:`Views.caught_up`) before it answers, so the next page shows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import unicodedata
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, RecordTooLargeError

from savin.domain.consent import contact_key
from savin.schemas import StoredRegistration
from savin.schemas.consent import Attempts, ConsentChange, Verification
from savin.schemas.escalation import CallRecord, Escalation, EscalationState
from savin.schemas.status import OffenderStatus
from savin.streams.errors import fault
from savin.streams.store import Store

__all__ = ["Views", "name_tokens"]

log = logging.getLogger("savin.web.views")

_STATUS = b"s:"  # + offender id -> OffenderStatus JSON
_REGISTRATION = b"r:"  # + registration id -> StoredRegistration JSON
_INDEX = b"i:"  # + blind index + \0 + registration id -> b""
_VERIFICATION = b"v:"  # + contact slot -> Verification JSON
_ATTEMPTS = b"a:"  # + attempts key -> Attempts JSON
_CONSENT = b"c:"  # + contact slot -> the slot's latest ConsentChange JSON
_CALL = b"k:"  # + call id -> CallRecord JSON
_ESCALATION = b"e:"  # + registration id + \0 + event id -> Escalation JSON


def name_tokens(text: str) -> list[str]:
    """Lower-case words without accents: "José  O'Brien-Núñez" -> ["jose", "o", "brien", "nunez"]."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    word = "".join(c if c.isalnum() else " " for c in plain.casefold())
    return word.split()


def _blind_indexes(reg: StoredRegistration) -> set[str]:
    return {i for c in reg.contacts if (i := getattr(c, "blind_index", None))}


class Views:
    """The replica behind the portal's pages; ``run()`` restores, then tails."""

    def __init__(self, bootstrap: str, status_topic: str, registrations_topic: str, store: Store, *,
                 verifications_topic: str | None = None, attempts_topic: str | None = None,
                 consent_topic: str | None = None, calls_topic: str | None = None,
                 escalations_topic: str | None = None):
        self.bootstrap = bootstrap
        self.status_topic = status_topic
        self.registrations_topic = registrations_topic
        self.store = store
        self._appliers = {status_topic: self._apply_status, registrations_topic: self._apply_registration}
        for topic, apply in ((verifications_topic, self._apply_verification), (attempts_topic, self._apply_attempts),
                             (consent_topic, self._apply_consent), (calls_topic, self._apply_call),
                             (escalations_topic, self._apply_escalation)):
            if topic is not None:
                self._appliers[topic] = apply
        self.ready = asyncio.Event()
        self._progress = asyncio.Condition()
        self.skipped = 0
        self.applied = 0  # records applied since this object was made
        self._names: dict[str, set[str]] = defaultdict(set)  # name token -> offender ids
        for key, value in store.scan(_STATUS):
            self._index_name(key[len(_STATUS):].decode(), value)

    def follow(self, topic: str, apply) -> None:
        """Keep one more topic in these views (before :meth:`run`): ``apply(puts, key,
        value)`` turns each record into writes to the store, as the built-in views do."""
        self._appliers[topic] = apply

    # ---- reading ---------------------------------------------------------------

    def offender(self, offender_id: str) -> OffenderStatus | None:
        raw = self.store.get(_STATUS + offender_id.encode())
        return OffenderStatus.model_validate_json(raw) if raw is not None else None

    def find_offenders(self, name_query: str, limit: int = 5) -> list[OffenderStatus]:
        """Offenders whose name holds every word of the query (any case, any accents),
        the closest names first; at most ``limit``."""
        tokens = name_tokens(name_query)
        if not tokens:
            return []
        ids: set[str] | None = None
        for t in tokens:
            found = {i for token, owners in self._names.items() if token.startswith(t) for i in owners}
            ids = found if ids is None else ids & found
            if not ids:
                return []
        statuses = [s for i in sorted(ids) if (s := self.offender(i)) is not None]
        statuses.sort(key=lambda s: (len(name_tokens(s.offender_name)), s.offender_name, s.offender_id))
        return statuses[:limit]

    def registration(self, registration_id: str) -> StoredRegistration | None:
        raw = self.store.get(_REGISTRATION + registration_id.encode())
        return StoredRegistration.model_validate_json(raw) if raw is not None else None

    def registrations_with_index(self, blind_index: str) -> list[StoredRegistration]:
        prefix = _INDEX + blind_index.encode() + b"\0"
        ids = [key[len(prefix):].decode() for key, _ in self.store.scan(prefix)]
        return [r for i in ids if (r := self.registration(i)) is not None]

    def verification(self, registration_id: str, channel: str, index: int) -> Verification | None:
        raw = self.store.get(_VERIFICATION + contact_key(registration_id, channel, index).encode())
        return Verification.model_validate_json(raw) if raw is not None else None

    def attempts(self, key: str) -> Attempts | None:
        raw = self.store.get(_ATTEMPTS + key.encode())
        return Attempts.model_validate_json(raw) if raw is not None else None

    def consent(self, registration_id: str, channel: str, index: int) -> ConsentChange | None:
        """The slot's latest opt-out or opt-in, or None when it never had one."""
        raw = self.store.get(_CONSENT + contact_key(registration_id, channel, index).encode())
        return ConsentChange.model_validate_json(raw) if raw is not None else None

    def opted_out(self, registration_id: str, channel: str, index: int) -> bool:
        c = self.consent(registration_id, channel, index)
        return c is not None and c.opted_out

    def call(self, call_id: str) -> CallRecord | None:
        raw = self.store.get(_CALL + call_id.encode())
        return CallRecord.model_validate_json(raw) if raw is not None else None

    def escalation(self, registration_id: str, event_id: str) -> Escalation | None:
        raw = self.store.get(_ESCALATION + registration_id.encode() + b"\0" + event_id.encode())
        return Escalation.model_validate_json(raw) if raw is not None else None

    def escalations(self, registration_id: str, *, open_only: bool = False) -> list[Escalation]:
        """The registration's escalations, oldest first; only those still waiting for an
        acknowledgement with ``open_only``."""
        found = [Escalation.model_validate_json(raw)
                 for _, raw in self.store.scan(_ESCALATION + registration_id.encode() + b"\0")]
        if open_only:
            found = [e for e in found if e.state is EscalationState.OPEN]
        return sorted(found, key=lambda e: e.started_at)

    async def caught_up(self, topic: str, partition: int, offset: int, timeout: float = 15.0) -> None:
        """Return once this view has applied ``offset`` of ``topic``'s ``partition``
        (a record this process just wrote); TimeoutError after ``timeout`` seconds."""
        name = _offset_name(topic, partition)

        async def applied() -> None:
            async with self._progress:
                await self._progress.wait_for(lambda: (self.store.offset(name) or 0) > offset)

        await asyncio.wait_for(applied(), timeout)

    # ---- applying records ------------------------------------------------------

    def _index_name(self, offender_id: str, raw: bytes | None, drop: bool = False) -> None:
        if raw is None:
            return
        try:
            name = json.loads(raw).get("offender_name", "")
        except ValueError:
            return
        for t in name_tokens(name):
            if drop:
                self._names[t].discard(offender_id)
                if not self._names[t]:
                    del self._names[t]
            else:
                self._names[t].add(offender_id)

    def _apply_status(self, puts: dict, key: bytes, value: bytes | None) -> None:
        store_key = _STATUS + key
        offender_id = key.decode()
        self._index_name(offender_id, puts.get(store_key) if store_key in puts else self.store.get(store_key),
                         drop=True)
        if value is None:
            puts[store_key] = None
            return
        status = OffenderStatus.model_validate_json(value)
        if status.offender_id != offender_id:
            raise ValueError("key is not the record's offender id")
        puts[store_key] = value
        self._index_name(offender_id, value)

    def _apply_registration(self, puts: dict, key: bytes, value: bytes | None) -> None:
        store_key = _REGISTRATION + key
        old = puts.get(store_key) if store_key in puts else self.store.get(store_key)
        if old is not None:
            for i in _blind_indexes(StoredRegistration.model_validate_json(old)):
                puts[_INDEX + i.encode() + b"\0" + key] = None
        if value is None:
            puts[store_key] = None
            return
        reg = StoredRegistration.model_validate_json(value)
        if reg.registration_id.encode() != key:
            raise ValueError("key is not the record's registration id")
        puts[store_key] = value
        for i in _blind_indexes(reg):
            puts[_INDEX + i.encode() + b"\0" + key] = b""

    def _apply_keyed(self, prefix: bytes, model, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is not None:
            model.model_validate_json(value)
        puts[prefix + key] = value

    def _apply_verification(self, puts: dict, key: bytes, value: bytes | None) -> None:
        self._apply_keyed(_VERIFICATION, Verification, puts, key, value)

    def _apply_attempts(self, puts: dict, key: bytes, value: bytes | None) -> None:
        self._apply_keyed(_ATTEMPTS, Attempts, puts, key, value)

    def _apply_consent(self, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        c = ConsentChange.model_validate_json(value)
        puts[_CONSENT + contact_key(c.registration_id, c.channel.value, c.contact_index).encode()] = value

    def _apply_call(self, puts: dict, key: bytes, value: bytes | None) -> None:
        self._apply_keyed(_CALL, CallRecord, puts, key, value)

    def _apply_escalation(self, puts: dict, key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        e = Escalation.model_validate_json(value)
        puts[_ESCALATION + e.registration_id.encode() + b"\0" + str(e.event_id).encode()] = value

    def apply(self, records: list) -> None:
        """Apply one partition's records and its next offset in one write."""
        puts: dict[bytes, bytes | None] = {}
        for r in records:
            try:
                if r.key is None:
                    raise ValueError("record without a key")
                self._appliers[r.topic](puts, r.key, r.value)
            except Exception as e:  # noqa: BLE001 - one bad record must not stop a view
                self.skipped += 1
                log.warning("view skipped topic=%s partition=%s offset=%s: %s",
                            r.topic, r.partition, r.offset, fault(e))
        self.applied += len(records)
        last = records[-1]
        self.store.write(puts, {_offset_name(last.topic, last.partition): last.offset + 1})

    # ---- the replica's loop -----------------------------------------------------

    async def run(self) -> None:
        """Restore, mark ready, tail; a Kafka fault is retried, never fatal."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, KafkaError, OSError) as e:
                log.warning("views lost Kafka (%s); reading again in 2 s", type(e).__name__)
                await asyncio.sleep(2)

    async def _follow(self) -> None:
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                                  max_partition_fetch_bytes=4 * 1024 * 1024, client_id="savin-web-views")
        await reader.start()
        try:
            tps = []
            for topic in self._appliers:
                parts = reader.partitions_for_topic(topic)
                if not parts:
                    # Topics created a moment ago: the consumer has no public call that refreshes its metadata.
                    await reader._client.force_metadata_update()
                    parts = reader.partitions_for_topic(topic) or set()
                tps += [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                raise KafkaError("the view topics have no partitions yet")
            reader.assign(tps)
            starts = await reader.beginning_offsets(tps)
            ends = await reader.end_offsets(tps)
            for tp in tps:
                reader.seek(tp, max(self.store.offset(_offset_name(tp.topic, tp.partition)) or 0, starts[tp]))
            behind = {tp: end for tp, end in ends.items() if await reader.position(tp) < end}
            if not behind:
                self._mark_ready()
            while True:
                try:
                    got = await reader.getmany(timeout_ms=500, max_records=5000)
                except RecordTooLargeError as e:
                    log.warning("view skipped a record larger than the fetch size: %s", e.args[1:3])
                    continue
                if any(got.values()):
                    async with self._progress:
                        for tp, records in got.items():
                            if records:
                                self.apply(records)
                        self._progress.notify_all()
                if behind:
                    for tp in list(behind):
                        if await reader.position(tp) >= behind[tp]:
                            del behind[tp]
                    if not behind:
                        self._mark_ready()
        finally:
            await reader.stop()

    def _mark_ready(self) -> None:
        if not self.ready.is_set():
            log.info("views ready: %d offenders", sum(1 for _ in self.store.scan(_STATUS)))
            self.ready.set()


def _offset_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"
