"""Health that tells the truth: ``/livez`` and ``/readyz`` of a worker running as
its own process (a broker stopped and started again under it), the readiness
rules as plain objects, the repeat filter on log lines, and a web server that
serves savin's pages and nothing else."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.error
import urllib.request
from collections import Counter

import pytest
from support import event, eventually, phone, registration

from savin.dev.testing.stack import LocalStack
from savin.logs import RepeatFilter, install_repeat_filter
from savin.notifiers.base import ConfigurationFault, Notifier
from savin.sealing import Sealer, new_key
from savin.settings import DataKeys
from savin.web.health import STALL_INTERVALS, KafkaProbe, Readiness

# ---- readiness rules ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStage:
    def __init__(self, name: str, clock: Clock, commit_interval: float = 1.0):
        self.name, self.commit_interval = name, commit_interval
        self.ready = asyncio.Event()
        self.last_progress = clock.now


class FakeNotifier(Notifier):
    provider, channel = "fake", "sms"

    async def try_send(self, address, message):
        return None


def probe(clock: Clock, connected: bool | None) -> KafkaProbe:
    p = KafkaProbe("127.0.0.1:1", clock=clock)
    if connected is not None:
        p._note(connected)
    return p


def test_ready_only_when_kafka_answers_every_stage_progresses_and_providers_accept():
    clock = Clock()
    stages = [FakeStage("match", clock), FakeStage("deliver", clock, commit_interval=0.0)]
    notifier = FakeNotifier(Sealer(DataKeys.parse(new_key())))
    kafka = probe(clock, None)
    readiness = Readiness(kafka, stages, [notifier], stall_after=20.0, clock=clock)

    ready, body = readiness.report()
    assert not ready and body["failing"] == ["kafka", "stage:match", "stage:deliver"]
    assert body["checks"]["kafka"] == {"ok": False, "detail": "no answer from Kafka yet"}
    assert body["checks"]["stage:match"]["detail"] == "restoring its partitions"

    kafka._note(True)
    for stage in stages:
        stage.ready.set()
    assert readiness.report() == (True, {"ready": True, "failing": [], "checks": {
        "kafka": {"ok": True}, "stage:match": {"ok": True}, "stage:deliver": {"ok": True},
        "provider:fake": {"ok": True}}})

    clock.now += 12
    kafka._note(False)
    clock.now += 4
    ready, body = readiness.report()
    assert (ready, body["failing"]) == (False, ["kafka"])
    assert body["checks"]["kafka"]["detail"] == "no answer from Kafka for 4 s"
    kafka._note(True)

    # Progress is judged over several commit intervals, and never less than stall_after.
    clock.now += 5
    stages[0].last_progress = clock.now
    clock.now += 21
    ready, body = readiness.report()
    assert body["failing"] == ["stage:match", "stage:deliver"]
    assert body["checks"]["stage:match"]["detail"] == "no progress for 21 s"
    stages[0].commit_interval = 10.0  # 5 intervals: 50 s
    stages[1].last_progress = clock.now
    assert readiness.report()[0] is True
    clock.now += STALL_INTERVALS * 10.0
    stages[1].last_progress = clock.now
    assert readiness.report()[1]["failing"] == ["stage:match"]
    stages[0].last_progress = clock.now

    notifier._note_fault(ConfigurationFault("fake refused savin's credentials for notice n-1", "20003"))
    ready, body = readiness.report()
    assert (ready, body["failing"]) == (False, ["provider:fake"])
    assert body["checks"]["provider:fake"] == {
        "ok": False, "detail": "the provider refuses savin's configuration", "code": "20003"}
    notifier._clear_fault()
    assert readiness.report()[0] is True


# ---- repeated log lines ------------------------------------------------------------------------


def record(msg: str, *args, level: int = logging.ERROR, name: str = "aiokafka.client") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_template_passes_once_then_once_per_interval_with_a_count():
    clock = Clock()
    f = RepeatFilter(interval=60.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    assert f.filter(record(template, 1, "refused"))
    passed = [f.filter(record(template, 1, "refused")) for _ in range(9319)]
    assert not any(passed)
    assert f.filter(record("Unable to update metadata from %s", [1]))  # another template
    assert f.filter(record(template, 1, "refused", level=logging.WARNING))  # another level
    assert f.filter(record("sent notice=%s", "n-1", level=logging.INFO, name="savin.notifiers"))
    assert f.filter(record("sent notice=%s", "n-2", level=logging.INFO, name="savin.notifiers"))  # INFO passes
    clock.now += 60
    summary = record(template, 1, "refused")
    assert f.filter(summary)
    assert summary.getMessage() == ("Unable connect to node with id 1: refused "
                                    "(repeated 9319 times in the last 60 s)")
    clock.now += 1
    assert not f.filter(record(template, 1, "refused"))
    clock.now += 61
    quiet = record(template, 1, "refused")
    assert f.filter(quiet)
    assert quiet.getMessage() == "Unable connect to node with id 1: refused (repeated 1 times in the last 62 s)"


def test_installed_on_the_handlers_it_judges_each_record_once():
    root = logging.getLogger()
    lines: list[list[str]] = [[], []]

    class Keep(logging.Handler):
        def __init__(self, into: list[str]):
            super().__init__()
            self.into = into

        def emit(self, r: logging.LogRecord) -> None:
            self.into.append(r.getMessage())

    handlers = [Keep(lines[0]), Keep(lines[1])]
    saved = root.handlers[:]
    root.handlers[:] = handlers
    try:
        repeat = install_repeat_filter(60.0, loggers=["savin.test.repeat"])
        child = logging.getLogger("savin.test.repeat.child")  # a child's records reach the root's handlers
        for _ in range(50):
            child.error("broker down: %s", "refused")
    finally:
        root.handlers[:] = saved
        logging.getLogger("savin.test.repeat").removeFilter(repeat)
    assert lines == [["broker down: refused"], ["broker down: refused"]]


# ---- the worker's pages ------------------------------------------------------------------------


def http(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_worker_serves_savins_pages_and_nothing_else(stack):
    worker = stack.start_worker()
    status, body = http(f"{worker.url}/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    checks = json.loads(body)["checks"]
    assert {c for c in checks if not c.startswith("lag:")} == {
        "kafka", "stage:match", "stage:deliver", "stage:status", "provider:twilio", "provider:smtp",
        "provider:twilio-voice"}
    # A stage's lag check comes with the lag monitor's first look at its group.
    assert {c for c in checks if c.startswith("lag:")} <= {"lag:match", "lag:deliver", "lag:status"}
    assert http(f"{worker.url}/livez") == (200, b'{"live": true}')
    status, body = http(f"{worker.url}/metrics")
    assert status == 200 and b"savin_kafka_connected 1.0" in body and b"savin_ready 1.0" in body
    for path in ("/", "/router/", "/router/some-key/", "/table/", "/table/registrations/", "/graph/",
                 "/stats/", "/assignment/", "/performance/", "/healthz", "/static/"):
        assert http(f"{worker.url}{path}")[0] == 404, path
    # Provider callbacks go to savin web: stream work never waits on web traffic.
    for path in ("/callbacks/twilio/status", "/webhooks/twilio/sms"):
        request = urllib.request.Request(f"{worker.url}{path}", data=b"MessageStatus=sent", method="POST")
        assert http(request)[0] == 404, path


# ---- a broker outage under a running worker --------------------------------------------------


LOG_LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(WARNING|ERROR|CRITICAL)\] (.*)$")


def repeated_lines(text: str) -> Counter:
    """How often each warning or error line's text (without time and pid) appears."""
    return Counter(m.groups() for line in text.splitlines() if (m := LOG_LINE.match(line)))


@pytest.mark.e2e
@pytest.mark.fault
async def test_readyz_follows_kafka_down_and_back_and_the_outage_is_not_a_flood(own_broker, tmp_path):
    stack = LocalStack(bootstrap=own_broker.bootstrap, workdir=tmp_path / "stack")
    stack.start_peers()
    try:
        worker = stack.start_worker()
        assert worker.readiness()[0] == 200
        before = len(worker.tail(10**9))

        await asyncio.to_thread(own_broker.stop, progress=lambda m: None)
        _, body = await eventually(lambda: (r := worker.readiness())[0] == 503 and r, 60, "readyz to answer 503")
        assert "kafka" in body["failing"] and body["checks"]["kafka"]["ok"] is False
        assert worker.live()
        assert "savin_kafka_connected 0.0" in worker.metrics()
        # The clients keep trying to reach the broker meanwhile; that must not flood the log.
        await asyncio.sleep(10)
        assert (await asyncio.to_thread(worker.readiness))[0] == 503

        await asyncio.to_thread(own_broker.start, progress=lambda m: None)
        await eventually(worker.ready, 120, "readyz to answer 200 again")
        metrics = worker.metrics()
        assert "savin_kafka_connected 1.0" in metrics
        held = sum(float(v) for v in re.findall(r"^savin_log_lines_suppressed_total\{[^}]*\} (\S+)$", metrics, re.MULTILINE))
        outage_log = worker.tail(10**9)[before:]
        counts = repeated_lines(outage_log)
        assert counts, "the outage left no warning or error in the log"
        worst, times = counts.most_common(1)[0]
        print(f"\n{sum(counts.values())} warning/error lines during the outage ({held:.0f} repeats held back); "
              f"most repeated x{times}: {worst}")
        assert times <= 2, (times, worst)

        # And the worker still delivers.
        await stack.import_registrations([registration("R-H", "O-H", sms=phone(7))])
        await stack.publish_events([json.dumps(event("RELEASED", "O-H"))])
        assert await asyncio.to_thread(stack.twilio.wait_for, 1, 60)
    finally:
        stack.stop()
