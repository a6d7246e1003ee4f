"""Publishing files of events and registrations to Kafka: read and validate
everything first, report bad documents by line number, publish the good ones.

A file is either JSON lines (one document per line; blank lines and lines
starting with ``#`` are skipped) or one JSON document, pretty-printed or not:
an object, or an array of objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.schemas import Registration, describe_errors, parse_event
from savin.sealing import Sealer, seal_registration
from savin.topics import Topics, ensure_topics, producer, registration_record

__all__ = ["Outgoing", "Document", "LineError", "Prepared", "PublishReport", "read_documents", "prepare",
           "publish_prepared", "publish_lines", "event_encoder", "registration_encoder"]


@dataclass(frozen=True)
class Outgoing:
    key: bytes
    value: bytes
    partition: int | None = None


@dataclass(frozen=True)
class Document:
    """One JSON document of the input and the line it starts on."""

    line: int
    raw: bytes


@dataclass(frozen=True)
class LineError:
    line: int
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class Prepared:
    """What a file holds: the records to publish, and what was wrong with the rest."""

    outgoing: list[Outgoing] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


@dataclass
class PublishReport:
    published: int = 0
    errors: list[LineError] = field(default_factory=list)


Encoder = Callable[[bytes], Outgoing]


def event_encoder(partitions: int) -> Encoder:
    def encode(raw: bytes) -> Outgoing:
        ev = parse_event(raw)
        return Outgoing(ev.offender_id.encode(), raw)

    return encode


def registration_encoder(sealer: Sealer, partitions: int) -> Encoder:
    """Seal before anything leaves the process; key by registration (so compaction
    keeps one per registration), partition by offender (co-partitioned with events)."""

    def encode(raw: bytes) -> Outgoing:
        reg = Registration.model_validate_json(raw)
        return Outgoing(*registration_record(seal_registration(reg, sealer, utcnow()), partitions))

    return encode


# ---- reading --------------------------------------------------------------------------


def _skipped(line: bytes) -> bool:
    line = line.strip()
    return not line or line.startswith(b"#")


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _whole_document(lines: list[bytes], first: int) -> list[Document] | LineError | None:
    """The documents of a file that is one JSON document, the error of one that
    is clearly meant to be, or None for anything else (read as JSON lines)."""
    head = lines[first].strip()
    try:
        text = b"\n".join(lines[first:]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        # A lone "{" or a "[" opens a document that JSON lines never start with.
        if head.startswith(b"[") or head == b"{":
            return LineError(first + e.lineno, f"Invalid JSON: {e.msg} (column {e.colno})")
        return None
    start = _skip_space(text, 0)

    def line_of(i: int) -> int:
        return first + 1 + text.count("\n", 0, i)

    if not isinstance(value, list):
        return [Document(line_of(start), text[start:].rstrip().encode())]
    # The text is valid JSON: walk the array for each item's own text and line.
    decoder, docs, i = json.JSONDecoder(), [], _skip_space(text, start + 1)
    while text[i] != "]":
        _, end = decoder.raw_decode(text, i)
        docs.append(Document(line_of(i), text[i:end].encode()))
        i = _skip_space(text, end)
        if text[i] == ",":
            i = _skip_space(text, i + 1)
    return docs


def read_documents(data: bytes) -> tuple[list[Document], list[LineError]]:
    """The documents of a file's bytes, JSON lines or one JSON document."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    first = next((n for n, line in enumerate(lines) if not _skipped(line)), None)
    if first is None:
        return [], []
    if lines[first].lstrip().startswith(b"[") or not _parses(lines[first]):
        whole = _whole_document(lines, first)
        if isinstance(whole, LineError):
            return [], [whole]
        if whole is not None:
            return whole, []
    return [Document(n, line.strip()) for n, line in enumerate(lines, start=1) if not _skipped(line)], []


def prepare(data: bytes, encode: Encoder) -> Prepared:
    """Read and validate (and, for registrations, seal) everything before anything is published."""
    docs, errors = read_documents(data)
    out = Prepared(errors=list(errors))
    for doc in docs:
        try:
            out.outgoing.append(encode(doc.raw))
        except ValidationError as e:
            out.errors.append(LineError(doc.line, describe_errors(e)))
        except ValueError as e:
            out.errors.append(LineError(doc.line, str(e)))
    return out


# ---- publishing ----------------------------------------------------------------------------


async def publish_prepared(
    outgoing: list[Outgoing],
    bootstrap: str,
    topic: str,
    topics: Topics,
    progress: Callable[[int], None] = lambda n: None,
    replication: int = 1,
) -> int:
    """Publish ``outgoing`` to ``topic`` (creating savin's topics first, with
    ``replication`` replicas); return how many Kafka acknowledged."""
    await ensure_topics(bootstrap, topics.specs(), replication)
    prod = producer(bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    published = 0
    try:
        await prod.start()
        pending = []
        for out in outgoing:
            pending.append(await prod.send(topic, out.value, key=out.key, partition=out.partition))
            if len(pending) % 1000 == 0:
                progress(len(pending))
        for fut in pending:
            await fut
            published += 1
        progress(published)
    finally:
        await prod.stop()
    return published


async def publish_lines(
    lines: Iterable[bytes],
    encode: Encoder,
    bootstrap: str,
    topic: str,
    topics: Topics,
    progress: Callable[[int], None] = lambda n: None,
    replication: int = 1,
) -> PublishReport:
    """Validate and publish the documents in ``lines`` (JSON lines, or the lines of one JSON document)."""
    prepared = prepare(b"\n".join(line.rstrip(b"\r\n") for line in lines), encode)
    report = PublishReport(errors=prepared.errors)
    if prepared.outgoing:
        report.published = await publish_prepared(prepared.outgoing, bootstrap, topic, topics, progress, replication)
    return report
