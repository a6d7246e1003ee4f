"""Consumer lag on the real broker: ``savin lag`` and the worker's gauges show a
backlog draining to 0 with every group OK; a stage nobody runs while notices
pile up is STOP; a partition a live stage holds but never moves is STALL and
the worker is not ready; two workers each report only their own partitions;
and the monitor ages a hung stage to STOP and drops a partition that moved.

Workers run as their own processes; the monitor's own test runs it in this one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid

import pytest
from prometheus_client import REGISTRY
from support import event, eventually, phone, registration, savin

from savin.dev.broker import free_port
from savin.dev.testing.console_client import ConsoleClient, api_client
from savin.dev.testing.worker import WorkerProcess
from savin.domain.clock import utcnow
from savin.domain.lag import WINDOW, Status
from savin.ops.operators import issue_token, new_account, write_records
from savin.ops.reading import OffsetWatch
from savin.schemas import NoticeJob
from savin.schemas.operators import Role
from savin.settings import load_settings
from savin.streams.deliver import DeliverStage
from savin.streams.lag import LagMonitor
from savin.streams.match import MatchStage
from savin.streams.status import StatusStage
from savin.topics import Topics, ensure_topics, producer
from savin.web.health import Readiness

pytestmark = pytest.mark.e2e

#: The worker looks at its groups this often in these tests (10 s by default).
FAST = {"SAVIN_LAG_INTERVAL": "0.5"}


CONSOLE_PASSWORD = "a lag test password"


async def console_token(stack) -> str:
    """A viewer account (lag-viewer) and a viewer token for the console's API."""
    now = utcnow()
    token, whole = issue_token("lag-viewer", Role.VIEWER, now)
    await write_records(stack.settings(), [new_account("lag-viewer", Role.VIEWER, CONSOLE_PASSWORD, now, "cli"),
                                           token])
    return whole


def lag(stack, *args: str) -> tuple[int, dict[str, dict]]:
    """``savin lag --json`` as an operator runs it: (exit code, each group's object by stage)."""
    done = savin(["lag", "--json", "--looks", "3", "--every", "0.3", *args], env=stack.env())
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {g["stage"]: g for g in map(json.loads, done.stdout.splitlines())}


def series(metrics_text: str, name: str) -> dict[tuple[str, str, int], float]:
    """Each (stage, topic, partition) series of a consumer gauge, with its value."""
    found = {}
    for labels, value in re.findall(rf"^{name}{{(.*)}} (\S+)$", metrics_text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        found[(have["stage"], have["topic"], int(have["partition"]))] = float(value)
    return found


def every_input(stack, *stages: str) -> set[tuple[str, str, int]]:
    topics, prefix = stack.topics, stack.namespace + "."
    return {(s, t.removeprefix(prefix), p) for s in stages for t in topics.stage_inputs(s)
            for p in range(stack.partitions)}


def caught_up(groups: dict[str, dict]) -> bool:
    return all(g["status"] == "OK" and all(p["lag"] == 0 and p["lag_seconds"] == 0 for p in g["partitions"])
               for g in groups.values())


async def test_each_stage_class_reads_the_topics_savin_lag_looks_at():
    s = load_settings(_env_file=None)
    topics = Topics(s)
    for stage in (MatchStage(s), DeliverStage(s, dispatcher=None), StatusStage(s)):
        assert stage.inputs == topics.stage_inputs(stage.name)


async def test_a_backlog_drains_to_zero_and_every_group_is_ok(stack):
    offenders = [f"OFF-{i}" for i in range(8)]
    report = await stack.import_registrations([registration(f"R-{i}", o, sms=phone(i))
                                               for i, o in enumerate(offenders)])
    assert report.errors == []
    await stack.publish_events([json.dumps(event("RELEASED", o)) for o in offenders])

    # No worker yet: nobody holds the match group's partitions and its offsets do not move.
    code, before = lag(stack, "--stage", "match")
    assert code == 1 and before["match"]["status"] == "STOP", before
    assert sum(p["lag"] for p in before["match"]["partitions"]) == 2 * len(offenders)
    assert all(p["committed"] is None for p in before["match"]["partitions"])
    assert "records behind" in before["match"]["reason"]

    worker = stack.start_worker(**FAST)
    assert await asyncio.to_thread(stack.twilio.wait_for, len(offenders), 60)
    # The registrations the worker restored count as read, though no new one arrived.
    await eventually(lambda: caught_up(lag(stack)[1]), 60, "savin lag to show every group caught up")
    code, after = lag(stack)
    assert code == 0 and set(after) == {"match", "deliver", "status"}
    assert {(s, p["topic"], p["partition"]) for s, g in after.items() for p in g["partitions"]} == \
        every_input(stack, "match", "deliver", "status")

    def gauges_at_zero():
        text = worker.metrics()
        records = series(text, "savin_consumer_lag_records")
        return (set(records) == every_input(stack, "match", "deliver", "status")
                and set(records.values()) == {0.0}
                and set(series(text, "savin_consumer_lag_seconds").values()) == {0.0}
                and set(series(text, "savin_consumer_status").values()) == {0.0})

    # Idle partitions too: every input partition the worker holds has its series.
    await eventually(gauges_at_zero, 60, "the worker's gauges to show every partition caught up")
    status, body = worker.readiness()
    assert status == 200
    assert {name: check for name, check in body["checks"].items() if name.startswith("lag:")} == {
        "lag:match": {"ok": True}, "lag:deliver": {"ok": True}, "lag:status": {"ok": True}}

    table = savin(["lag", "--looks", "2", "--every", "0.2"], env={**stack.env(), "COLUMNS": "160"})
    assert table.returncode == 0, table.stderr
    assert f"deliver ({stack.namespace}.deliver): OK" in table.stdout
    assert "notices.urgent" in table.stdout


async def test_a_stage_nobody_runs_while_notices_pile_up_is_stop_until_a_worker_runs_it(stack):
    worker = stack.start_worker(SAVIN_STAGES="match,status", **FAST)
    offenders = [f"OFF-{i}" for i in range(6)]
    await stack.import_registrations([registration(f"R-{i}", o, sms=phone(i)) for i, o in enumerate(offenders)])
    await stack.wait_caught_up(stack.topics.registrations)
    await stack.publish_events([json.dumps(event("ESCAPED", o)) for o in offenders])

    async def planned():
        async with OffsetWatch(stack.bootstrap) as watch:
            return await watch.total(stack.topics.notices_urgent) == len(offenders)

    await eventually(planned, 60, "the notices to be planned")
    code, groups = lag(stack, "--stage", "deliver")
    deliver = groups["deliver"]
    assert code == 1 and deliver["status"] == "STOP", deliver

    # The console shows the same: its API and its overview page.
    token = await console_token(stack)
    web = stack.start_web(**FAST)
    api = api_client(web.url, token)

    async def console_stop():
        stages = {st["stage"]: st for st in api.get("/lag").json()["stages"]}
        return stages.get("deliver", {}).get("status") == "STOP" and stages["deliver"]

    shown = await eventually(console_stop, 30, "the console to show the deliver group STOP")
    stopped = {(p["topic"].removeprefix(stack.namespace + "."), p["partition"])
               for p in shown["partitions"] if p["status"] == "STOP"}
    assert stopped == {("notices.urgent", p["partition"]) for p in deliver["partitions"]
                       if p["topic"] == "notices.urgent" and p["lag"]}
    page = ConsoleClient(web.url)
    assert page.sign_in("lag-viewer", CONSOLE_PASSWORD).status_code == 303
    overview = page.get("/console").text
    assert re.search(r'id="stage-deliver">\s*<caption[^>]*>deliver stage .*?tag--lag-stop', overview, re.S)
    urgent = [p for p in deliver["partitions"] if p["topic"] == "notices.urgent"]
    assert sum(p["lag"] for p in urgent) == len(offenders)
    assert {p["status"] for p in urgent if p["lag"]} == {"STOP"}
    assert all(p["lag_seconds"] > 0 for p in urgent if p["lag"])
    assert deliver["reason"].startswith("notices.urgent[")

    # The worker judges only the stages it runs, and is ready.
    await eventually(lambda: caught_up(lag(stack, "--stage", "match", "--stage", "status")[1]), 60,
                     "the match and status groups to catch up")
    assert {s for s, _, _ in series(worker.metrics(), "savin_consumer_lag_records")} == {"match", "status"}
    status, body = worker.readiness()
    assert status == 200 and "lag:deliver" not in body["checks"], body

    deliverer = WorkerProcess({**stack.env(), "SAVIN_STAGES": "deliver", "SAVIN_DATA_DIR": str(stack.workdir / "d"),
                               **FAST}, stack.workdir / "deliver.log", free_port())
    stack.workers.append(deliverer)
    deliverer.start()
    assert await asyncio.to_thread(stack.twilio.wait_for, len(offenders), 60)
    await eventually(lambda: caught_up(lag(stack, "--stage", "deliver")[1]), 60, "the deliver group to catch up")


async def test_a_partition_the_stage_holds_but_never_moves_is_stall_and_the_worker_is_not_ready(stack):
    # One retry tier of 1 s, and a notice on it that says it is due tomorrow: the deliver
    # stage holds the partition (as it would any notice not yet due), and keeps turning.
    stack.worker_env.update(SAVIN_RETRY_DELAYS="1", **FAST)
    worker = stack.start_worker(SAVIN_STAGES="deliver")
    now = dt.datetime.now(dt.timezone.utc)
    job = json.dumps({
        "notice_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "event_type": "RELEASED", "urgency": "urgent",
        "registration_id": "R-HELD", "offender_id": "OFF-HELD", "channel": "sms", "address_sealed": "v1.k1.AAAA",
        "language": "en", "timezone": "America/Chicago", "event": {}, "attempt": 1,
        "not_before": (now + dt.timedelta(days=1)).isoformat(), "created_at": now.isoformat()}).encode()
    NoticeJob.model_validate_json(job)
    retry = stack.topics.retries[0]
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(retry, job, key=b"R-HELD", partition=0)
    finally:
        await prod.stop()

    def unready():
        status, body = worker.readiness()
        return body if status == 503 and body.get("failing") == ["lag:deliver"] else None

    body = await eventually(unready, 60, "the worker to be not ready for the held partition")
    check = body["checks"]["lag:deliver"]
    assert check["code"] == "STALL" and check["detail"].startswith(f"STALL: {retry}[0] the committed offset stayed")
    text = worker.metrics()
    key = ("deliver", "notice-retries.0", 0)
    assert series(text, "savin_consumer_status")[key] == float(Status.STALL)
    assert series(text, "savin_consumer_lag_records")[key] == 1.0
    assert series(text, "savin_consumer_lag_seconds")[key] > 0
    code, groups = lag(stack, "--stage", "deliver")  # a live member holds it: STALL, not STOP
    assert code == 1 and groups["deliver"]["status"] == "STALL", groups


async def test_two_workers_each_report_only_the_partitions_they_hold(stack):
    first = stack.start_worker(**FAST)
    second = WorkerProcess({**stack.env(), "SAVIN_DATA_DIR": str(stack.workdir / "second"), **FAST},
                           stack.workdir / "second.log", free_port())
    stack.workers.append(second)
    second.start()
    expected = every_input(stack, "match", "deliver", "status")

    def split():
        a, b = (set(series(w.metrics(), "savin_consumer_lag_records")) for w in (first, second))
        return a and b and not a & b and a | b == expected

    await eventually(split, 90, "the two workers to report the partitions between them, none twice")
    second.stop()
    await eventually(lambda: set(series(first.metrics(), "savin_consumer_lag_records")) == expected, 90,
                     "the remaining worker to report every partition")


# ---- the monitor in this process ------------------------------------------------------------------


class Consumer:
    def __init__(self, held):
        self.held = set(held)

    def assignment(self):
        return set(self.held)


class HeldStage:
    """What the monitor reads of a stage: its name, readiness, progress and assignment."""

    def __init__(self, name: str, held):
        self.name, self.consumer = name, Consumer(held)
        self.ready = asyncio.Event()
        self.ready.set()
        self.last_progress = 0.0


def gauge(name: str, group: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(name, {"stage": "deliver", "group": group, "topic": topic,
                                            "partition": str(partition)})


async def test_the_monitor_ages_a_hung_stage_to_stop_and_drops_a_partition_that_moved(kafka_bootstrap, namespace):
    from aiokafka import TopicPartition

    s = load_settings(kafka_bootstrap=kafka_bootstrap, namespace=namespace, partitions=2, _env_file=None)
    topics = Topics(s)
    await ensure_topics(kafka_bootstrap, topics.specs())
    prod = producer(kafka_bootstrap)
    await prod.start()
    try:
        for partition, n in ((0, 3), (1, 2)):
            for _ in range(n):
                await prod.send_and_wait(topics.notices_urgent, b"{}", partition=partition)
    finally:
        await prod.stop()
    urgent = [TopicPartition(topics.notices_urgent, p) for p in (0, 1)]
    stage = HeldStage("deliver", [*urgent, TopicPartition(topics.consent, 0)])
    clock = [time.time()]
    monitor = LagMonitor(s, [stage], clock=lambda: clock[0])
    readiness = Readiness(None, [], [], lag=monitor)
    group = topics.group("deliver")
    try:
        for _ in range(WINDOW):  # the stage's loop turns at every look, the partitions do not move
            stage.last_progress += 1
            clock[0] += 10
            await monitor.look()
        judged = monitor.groups["deliver"]
        assert judged.status is Status.STALL and judged.worst.partition == 0
        ready, body = readiness.report()
        assert not ready and body["checks"]["lag:deliver"]["code"] == "STALL"
        assert gauge("savin_consumer_status", group, "notices.urgent", 0) == float(Status.STALL)
        assert gauge("savin_consumer_lag_records", group, "notices.urgent", 0) == 3
        assert gauge("savin_consumer_lag_seconds", group, "notices.urgent", 0) >= 90
        assert gauge("savin_consumer_status", group, "consent", 0) == float(Status.OK)

        for _ in range(WINDOW):  # the loop hangs: no look is a commit any more
            clock[0] += 10
            await monitor.look()
        judged = monitor.groups["deliver"]
        assert judged.status is Status.STOP and judged.worst.reason.startswith("no commit for")
        assert readiness.report()[1]["checks"]["lag:deliver"]["code"] == "STOP"

        stage.consumer.held = {urgent[1]}  # the other partitions moved to another worker
        clock[0] += 10
        await monitor.look()
        for name in ("savin_consumer_lag_records", "savin_consumer_lag_seconds", "savin_consumer_status"):
            assert gauge(name, group, "notices.urgent", 0) is None
            assert gauge(name, group, "consent", 0) is None
            assert gauge(name, group, "notices.urgent", 1) is not None
        assert [p.partition for p in monitor.groups["deliver"].partitions] == [1]
    finally:
        await monitor.on_stop()
