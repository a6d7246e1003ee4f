"""`savin dead-letters list | replay` against the real broker: each dead letter
is sent back once however often replay runs, carries the replay header, can
be picked by reason, topic and time, and an excerpt is never sent on."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import uuid

import pytest
from support import EXAMPLES, records, savin

from savin.ops.reading import read_topic
from savin.schemas import DeadLetter
from savin.schemas.notices import REPLAY_HEADER
from savin.settings import load_settings
from savin.topics import Topics, ensure_topics, producer

def letter(topic: str, partition: int, offset: int, value: bytes, *, key: bytes | None = None,
           reason: str = "invalid event: RELEASED.payload.facility: Field required", at: dt.datetime | None = None,
           truncated: bool = False, replay_of: uuid.UUID | None = None) -> DeadLetter:
    size = len(value) * 10 if truncated else len(value)
    return DeadLetter(
        dead_letter_id=uuid.uuid4(), reason=reason, source_topic=topic, source_partition=partition,
        source_offset=offset, key_b64=base64.b64encode(key).decode() if key is not None else None,
        value_b64=base64.b64encode(value).decode(), value_size=size,
        value_sha256=None if truncated else hashlib.sha256(value).hexdigest(), value_truncated=truncated,
        replay_of=replay_of, at=at or dt.datetime.now(dt.timezone.utc),
    )


@pytest.fixture
def env(kafka_bootstrap, namespace):
    return {"SAVIN_KAFKA_BOOTSTRAP": kafka_bootstrap, "SAVIN_NAMESPACE": namespace}


@pytest.fixture
def topics(env) -> Topics:
    return Topics(load_settings(_env_file=None, kafka_bootstrap=env["SAVIN_KAFKA_BOOTSTRAP"],
                                namespace=env["SAVIN_NAMESPACE"]))


@pytest.fixture
def post(kafka_bootstrap, topics):
    """Write dead letters as the stages do."""
    asyncio.run(ensure_topics(kafka_bootstrap, topics.specs()))

    def post(*letters: DeadLetter) -> None:
        async def send():
            prod = producer(kafka_bootstrap)
            await prod.start()
            try:
                for d in letters:
                    await prod.send_and_wait(topics.dead_letters, d.model_dump_json().encode())
            finally:
                await prod.stop()
        asyncio.run(send())

    return post


def listed(env, *args) -> dict[str, dict]:
    done = savin(["dead-letters", "list", "--json", *args], env)
    assert done.returncode == 0, done.stderr
    return {row["dead_letter_id"]: row for row in map(json.loads, done.stdout.splitlines())}


def test_replay_sends_each_letter_once_with_the_replay_header(kafka_bootstrap, env, topics, post):
    event = (EXAMPLES / "events" / "RELEASED.json").read_bytes()
    first = letter(topics.custody_events, 3, 41, event, key=b"MO-1048576")
    # A record that failed again after a replay: replayable once, like any other.
    again = letter(topics.registrations, 2, 7, b'{"kind": "registration"}', key=b"R-1",
                   reason="invalid registration: updated_at: Field required", replay_of=uuid.uuid4())
    excerpt = letter(topics.custody_events, 1, 99, b'{"event_id": "0be0', key=b"MO-7", truncated=True)
    post(first, again, excerpt)

    done = savin(["dead-letters", "replay", "--all"], env)
    assert done.returncode == 1, done.stderr  # the excerpt is refused
    assert "replayed 2, already replayed 0, refused 1" in done.stdout
    assert f"replayed {first.dead_letter_id} to {topics.custody_events}[3]@0" in done.stdout
    (refusal,) = [line for line in done.stderr.splitlines() if str(excerpt.dead_letter_id) in line]
    assert "excerpt" in refusal and f"{topics.custody_events} partition 1 offset 99" in refusal
    assert "Traceback" not in done.stderr

    def sent():
        return records(kafka_bootstrap, topics.custody_events) + records(kafka_bootstrap, topics.registrations)

    got = sent()
    assert sorted((r.topic, r.partition, r.key, r.value, r.headers) for r in got) == sorted([
        (topics.custody_events, 3, b"MO-1048576", event, ((REPLAY_HEADER, str(first.dead_letter_id).encode()),)),
        (topics.registrations, 2, b"R-1", b'{"kind": "registration"}',
         ((REPLAY_HEADER, str(again.dead_letter_id).encode()),)),
    ])
    marks = records(kafka_bootstrap, topics.dead_letter_replays)
    assert sorted(r.key for r in marks) == sorted(str(d.dead_letter_id).encode() for d in (first, again))

    # Replaying again sends nothing: the replays are on Kafka, not in a process.
    done = savin(["dead-letters", "replay", "--all"], env)
    assert "replayed 0, already replayed 2, refused 1" in done.stdout
    done = savin(["dead-letters", "replay", "--id", str(first.dead_letter_id)], env)
    assert done.returncode == 0 and "not sent again" in done.stdout and "replayed 0, already replayed 1" in done.stdout
    assert len(sent()) == 2

    rows = listed(env)
    assert rows[str(first.dead_letter_id)]["replayed_at"] and rows[str(again.dead_letter_id)]["replayed_at"]
    assert rows[str(excerpt.dead_letter_id)]["replayed_at"] is None
    assert rows[str(again.dead_letter_id)]["replay_of"] == str(again.replay_of)
    assert not any(row["replayable"] for row in rows.values())
    assert not any("value_b64" in row or "key_b64" in row for row in rows.values())

    table = savin(["dead-letters", "list"], env)
    assert table.returncode == 0
    for d in (first, again, excerpt):
        assert str(d.dead_letter_id) in table.stdout  # never cut short, whatever the width
    assert str(again.replay_of) in table.stdout and "excerpt only" in table.stdout


def test_dry_run_says_what_would_be_sent_and_sends_nothing(kafka_bootstrap, env, topics, post):
    event = (EXAMPLES / "events" / "ESCAPED.json").read_bytes()
    d = letter(topics.custody_events, 0, 5, event, key=b"MO-1048576")
    post(d)
    done = savin(["dead-letters", "replay", "--all", "--dry-run"], env)
    assert done.returncode == 0, done.stderr
    assert f"would replay {d.dead_letter_id} to {topics.custody_events}[0]" in done.stdout
    assert "would replay 1, already replayed 0, refused 0" in done.stdout
    assert records(kafka_bootstrap, topics.custody_events) == []
    assert records(kafka_bootstrap, topics.dead_letter_replays) == []
    assert listed(env)[str(d.dead_letter_id)]["replayable"] is True

    done = savin(["dead-letters", "replay", "--id", str(d.dead_letter_id)], env)
    assert done.returncode == 0 and "replayed 1, already replayed 0, refused 0" in done.stdout
    assert [r.value for r in records(kafka_bootstrap, topics.custody_events)] == [event]


def test_list_and_replay_filter_by_reason_topic_and_time(kafka_bootstrap, env, topics, post):
    # Times relative to when the test runs, not when the module was collected: --since 15m must still see
    # the letter written 10 minutes before now however long the earlier tests took.
    now = dt.datetime.now(dt.timezone.utc)
    event = (EXAMPLES / "events" / "RELEASED.json").read_bytes()
    old = letter(topics.custody_events, 0, 1, event, key=b"MO-1", reason="invalid event: RELEASED.occurred_at: x",
                 at=now - dt.timedelta(hours=5))
    recent = letter(topics.custody_events, 0, 2, event, key=b"MO-1", reason="invalid event: RELEASED.source: x",
                    at=now - dt.timedelta(minutes=10))
    other_topic = letter(topics.notices_urgent, 1, 3, b"{}", key=b"R-1", reason="notice failed: KeyError: 'x'",
                         at=now - dt.timedelta(minutes=40))
    post(old, recent, other_topic)
    everything = {str(d.dead_letter_id) for d in (old, recent, other_topic)}
    assert set(listed(env)) == everything
    assert set(listed(env, "--reason", "OCCURRED_AT")) == {str(old.dead_letter_id)}
    assert set(listed(env, "--topic", "notices.urgent")) == {str(other_topic.dead_letter_id)}
    assert set(listed(env, "--topic", topics.custody_events)) == {str(old.dead_letter_id), str(recent.dead_letter_id)}
    assert set(listed(env, "--since", "1h")) == {str(recent.dead_letter_id), str(other_topic.dead_letter_id)}
    assert set(listed(env, "--since", "15m")) == {str(recent.dead_letter_id)}
    until = (now - dt.timedelta(hours=1)).isoformat()
    assert set(listed(env, "--until", until)) == {str(old.dead_letter_id)}
    assert set(listed(env, "--since", (now - dt.timedelta(days=1)).date().isoformat(), "--until", "30m")) == {
        str(old.dead_letter_id), str(other_topic.dead_letter_id)}

    done = savin(["dead-letters", "list", "--since", "yesterday"], env)
    assert done.returncode == 2 and "--since" in done.stderr and "Traceback" not in done.stderr

    done = savin(["dead-letters", "replay", "--all", "--topic", "custody-events", "--since", "1h"], env)
    assert done.returncode == 0, done.stderr
    assert "replayed 1, already replayed 0, refused 0" in done.stdout and str(recent.dead_letter_id) in done.stdout
    assert [r.headers for r in records(kafka_bootstrap, topics.custody_events)] == [
        ((REPLAY_HEADER, str(recent.dead_letter_id).encode()),)]

    done = savin(["dead-letters", "replay", "--reason", "KeyError"], env)
    assert done.returncode == 2 and "--all" in done.stderr
    done = savin(["dead-letters", "replay", "--id", str(uuid.uuid4())], env)
    assert done.returncode == 1 and "no dead letter with id" in done.stderr


@pytest.mark.e2e
async def test_a_letter_that_fails_again_is_replayed_once_not_doubled(stack):
    """The worker dead-letters a bad event; each replay sends only letters never
    replayed, so repeated replays add one letter each instead of doubling them."""
    stack.start_worker()
    bad = json.loads((EXAMPLES / "events" / "ESCAPED.json").read_text()) | {"occurred_at": "1763660000"}
    await stack.publish_raw(json.dumps(bad).encode(), key=b"MO-1048576")
    env = stack.env()

    async def letters(n: int) -> list[DeadLetter]:
        for _ in range(300):
            got = await stack.dead_letters()
            if len(got) >= n:
                return got
            await asyncio.sleep(0.2)
        raise AssertionError(f"expected {n} dead letters, have {len(got)}")

    (first,) = await letters(1)
    assert "ESCAPED.occurred_at" in first.reason and first.replay_of is None
    previous = first
    for n in (2, 3):
        done = await asyncio.to_thread(savin, ["dead-letters", "replay", "--all"], env)
        assert done.returncode == 0, done.stderr
        assert f"replayed {previous.dead_letter_id} " in done.stdout and "replayed 1, already replayed" in done.stdout
        await stack.wait_caught_up(stack.topics.custody_events)
        got = await letters(n)
        assert len(got) == n
        # The record failed again: one new letter, pointing to the one it was replayed from.
        (newest,) = [d for d in got if d.replay_of == previous.dead_letter_id]
        previous = newest
    await asyncio.sleep(1)
    assert len(await stack.dead_letters()) == 3
    replayed = [r async for r in read_topic(stack.bootstrap, stack.topics.custody_events) if r.headers]
    assert len(replayed) == 2 and all(name == REPLAY_HEADER for (name, _), in (r.headers for r in replayed))
