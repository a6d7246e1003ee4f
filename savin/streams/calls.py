"""The worker's writer of call records: what a call says, sealed, put on the
``calls`` topic before the call is placed, so whichever web process Twilio
reaches for the call's TwiML can serve it.

:meth:`CallBook.put` returns only once Kafka has acknowledged the record: a
call placed before its record is on the topic could reach a web process
that has nothing to say. The web process writes a call's later states
(answered) through its own writer, ``savin.web.portal.commands``.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from savin.schemas.escalation import CallRecord
from savin.topics import partition_for, producer

__all__ = ["CallBook"]


class CallBook:
    """Puts :class:`CallRecord` records on the calls topic: keyed by the call id, on
    the partition of the registration (as every record about a registration)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, *, client_id: str = "savin-calls"):
        self.topic = topic
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._producer is None:
                p = producer(self._bootstrap, client_id=self._client_id)
                await p.start()
                self._producer = p

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def put(self, record: CallRecord) -> None:
        """Write ``record`` and wait for Kafka's acknowledgement (raises KafkaError when it fails)."""
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        partition = partition_for(record.registration_id.encode(), self._partitions)
        sent = await self._producer.send(self.topic, record.model_dump_json().encode(),
                                         key=str(record.call_id).encode(), partition=partition)
        await sent
