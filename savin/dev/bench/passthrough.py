"""The baseline stage: consume -> produce with raw aiokafka, at least once
(batch in, batch out, then commit), run as its own process like the worker.

    python -m savin.dev.bench.passthrough BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP

Prints ``ready`` once it holds partitions, then copies until terminated.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

from savin.topics import producer


class _Ready(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked) -> None:
        pass

    async def on_partitions_assigned(self, assigned) -> None:
        if assigned:
            self.assigned.set()


async def passthrough(bootstrap: str, source: str, sink: str, group: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    ready = _Ready()
    consumer.subscribe([source], listener=ready)
    prod = producer(bootstrap)
    await consumer.start()
    await prod.start()
    try:
        announced = False
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            if not announced and ready.assigned.is_set():
                print("ready", flush=True)
                announced = True
            pending = [
                await prod.send(sink, r.value, key=r.key, partition=r.partition)
                for records in batches.values() for r in records
            ]
            if pending:
                await asyncio.gather(*pending)
                await consumer.commit()
    finally:
        await consumer.stop()
        await prod.stop()


if __name__ == "__main__":
    asyncio.run(passthrough(*sys.argv[1:5]))
