"""Dead letters: list them, send them back to their source topic."""

from __future__ import annotations

import base64

from savin.ops.reading import read_topic
from savin.schemas import DeadLetter
from savin.settings import Settings
from savin.topics import Topics, producer

__all__ = ["list_dead_letters", "replay_dead_letters"]


async def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    topic = Topics(settings).dead_letters
    return [DeadLetter.model_validate_json(r.value) async for r in read_topic(settings.kafka_bootstrap, topic)]


async def replay_dead_letters(settings: Settings, dead_letter_id: str | None = None) -> int:
    """Publish dead letters back to their source topic, key and bytes unchanged.

    Events are deduplicated by event_id and notices by the ledger, so a replay of
    something already delivered sends nothing twice.
    """
    letters = await list_dead_letters(settings)
    if dead_letter_id:
        letters = [d for d in letters if str(d.dead_letter_id) == dead_letter_id]
    prod = producer(settings.kafka_bootstrap)
    await prod.start()
    try:
        for d in letters:
            key = base64.b64decode(d.key_b64) if d.key_b64 else None
            await prod.send_and_wait(d.source_topic, base64.b64decode(d.value_b64), key=key)
    finally:
        await prod.stop()
    return len(letters)
