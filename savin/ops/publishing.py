"""Publishing JSON lines to Kafka: validate every line first, report bad lines
by number, publish the good ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from savin.domain.clock import utcnow
from savin.schemas import Registration, describe_errors, parse_event
from savin.sealing import Sealer, seal_registration
from savin.topics import Topics, ensure_topics, partition_for, producer

__all__ = ["Outgoing", "LineError", "PublishReport", "publish_lines", "event_encoder", "registration_encoder"]


@dataclass(frozen=True)
class Outgoing:
    key: bytes
    value: bytes
    partition: int | None = None


@dataclass(frozen=True)
class LineError:
    line: int
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class PublishReport:
    published: int = 0
    errors: list[LineError] = field(default_factory=list)


Encoder = Callable[[bytes], Outgoing]


def event_encoder(partitions: int) -> Encoder:
    def encode(line: bytes) -> Outgoing:
        ev = parse_event(line)
        return Outgoing(ev.offender_id.encode(), line)

    return encode


def registration_encoder(sealer: Sealer, partitions: int) -> Encoder:
    """Seal before anything leaves the process; key by registration (so compaction
    keeps one per registration), partition by offender (co-partitioned with events)."""

    def encode(line: bytes) -> Outgoing:
        reg = Registration.model_validate_json(line)
        stored = seal_registration(reg, sealer, utcnow())
        return Outgoing(
            reg.registration_id.encode(),
            stored.model_dump_json().encode(),
            partition_for(reg.offender_id.encode(), partitions),
        )

    return encode


async def publish_lines(
    lines: Iterable[bytes],
    encode: Encoder,
    bootstrap: str,
    topic: str,
    topics: Topics,
    progress: Callable[[int], None] = lambda n: None,
) -> PublishReport:
    report = PublishReport()
    await ensure_topics(bootstrap, topics.specs())
    prod = producer(bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await prod.start()
    try:
        pending = []
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            try:
                out = encode(line)
            except ValidationError as e:
                report.errors.append(LineError(number, describe_errors(e)))
                continue
            except ValueError as e:
                report.errors.append(LineError(number, str(e)))
                continue
            pending.append(await prod.send(topic, out.value, key=out.key, partition=out.partition))
            report.published += 1
            if report.published % 1000 == 0:
                progress(report.published)
        for fut in pending:
            await fut
        progress(report.published)
    finally:
        await prod.stop()
    return report
