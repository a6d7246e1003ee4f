"""What the web process writes: records to Kafka, and the codes and links that
prove a contact, sent straight through the channel's notifier.

Every write waits for Kafka's acknowledgement and then for this process's own
view to hold the record, so the page that follows shows it. Verification
codes go out from here rather than through the deliver stage: the code must
never sit on a topic (not even sealed), and the registrant is waiting on the
page for it. The record of the send (a hash, its time) is written first, so
the rate limits hold across every web process.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from savin.notifiers.base import DeliveryError, Notifier, Outbound
from savin.schemas import StoredRegistration
from savin.schemas.consent import Attempts, ConsentChange, Verification
from savin.schemas.escalation import Acknowledgement
from savin.topics import Topics, partition_for, producer, registration_record
from savin.web.portal.views import Views

__all__ = ["Commands"]

log = logging.getLogger("savin.web.commands")


class Commands:
    def __init__(self, bootstrap: str, topics: Topics, views: Views, notifiers: dict[str, Notifier] | None = None):
        self.bootstrap = bootstrap
        self.topics = topics
        self.views = views
        self.notifiers = notifiers or {}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is None:
            self._producer = producer(self.bootstrap, client_id="savin-web")
            await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        for n in self.notifiers.values():
            await n.close()

    async def publish(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None):
        """Write one record and wait only for Kafka to have it (a topic no view here shows,
        such as delivery-results); its RecordMetadata."""
        await self.start()
        assert self._producer is not None
        if partition is None:
            partition = partition_for(key, self.topics.partitions)
        return await (await self._producer.send(topic, value, key=key, partition=partition))

    async def write(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        """Write one record, wait for Kafka to have it and for the view to hold it."""
        meta = await self.publish(topic, key, value, partition)
        await self.views.caught_up(topic, meta.partition, meta.offset)

    async def save_registration(self, stored: StoredRegistration) -> None:
        key, value, partition = registration_record(stored, self.topics.partitions)
        await self.write(self.topics.registrations, key, value, partition)

    async def save_verification(self, v: Verification) -> None:
        key = f"{v.registration_id}:{v.channel.value}:{v.contact_index}".encode()
        await self.write(self.topics.verifications, key, v.model_dump_json().encode())

    async def save_attempts(self, a: Attempts) -> None:
        await self.write(self.topics.attempts, a.key.encode(), a.model_dump_json().encode())

    async def record_consent(self, c: ConsentChange) -> None:
        """An opt-out or opt-in, on the consent topic the deliver stage applies (keyed by registration)."""
        await self.write(self.topics.consent, c.registration_id.encode(), c.model_dump_json().encode())

    async def acknowledge(self, a: Acknowledgement) -> None:
        """A registrant confirmed an urgent notice: on the acknowledgements topic the deliver stage
        reads (keyed by registration), which no view here shows, so Kafka's acknowledgement is enough."""
        await self.publish(self.topics.acknowledgements, a.registration_id.encode(), a.model_dump_json().encode())

    async def send(self, channel: str, registration_id: str, address_sealed: str, content: Any, ref: str) -> bool:
        """Send a code or link through the channel's notifier; False (logged by ``ref``) when it fails."""
        notifier = self.notifiers.get(channel)
        if notifier is None:
            log.warning("no %s notifier for %s", channel, ref)
            return False
        try:
            await notifier.send(Outbound(notice_id=ref, registration_id=registration_id,
                                         address_sealed=address_sealed, content=content))
        except DeliveryError as e:
            log.warning("%s for %s not sent: %s", channel, ref, e.code)
            return False
        return True
