"""Whether the configured Kafka answers, asked once and quickly before an
operator command starts its real work."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

__all__ = ["BrokerUnavailable", "require_broker", "CONNECT_TIMEOUT"]

#: Seconds to wait for the broker. A broker that answers does so in
#: milliseconds; the clients' own default (40 s per try) would leave an operator
#: staring at a silent terminal.
CONNECT_TIMEOUT = 5.0


class BrokerUnavailable(Exception):
    """No Kafka broker answers at the configured address."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        super().__init__(f"no Kafka broker answers at {bootstrap} (SAVIN_KAFKA_BOOTSTRAP): "
                         "start one with `savin broker start`, or set SAVIN_KAFKA_BOOTSTRAP to a running broker")


async def require_broker(bootstrap: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`BrokerUnavailable` unless a broker answers a metadata request within ``timeout``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaError, OSError, asyncio.TimeoutError, ValueError):
        raise BrokerUnavailable(bootstrap) from None
    finally:
        await admin.close()
