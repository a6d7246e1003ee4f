"""Deadline evidence and program statistics of a scripted run, on the real broker: the
records a run leaves (notice jobs, held notices, delivery results, acknowledgements,
registrations, holds, feed status changes) are published as the stages write them, and
the report's rows and tables must match the ones worked out by hand below, small cells
suppressed; through `savin deadlines report` and `savin stats` (CSV, JSON, table), the
API (validated against its OpenAPI document) and the console's page in a real browser
(axe-clean, phone and desktop), whose download links give the CLI's CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from collections import Counter

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from support import savin
from test_console_browser import PASSWORD, sign_in
from test_portal import check_page, screenshots_dir

from savin.dev.testing.console_client import api_client
from savin.domain.clock import utcnow
from savin.ops.operators import issue_token, new_account, write_records
from savin.ops.reading import read_topic
from savin.ops.reports import EVIDENCE_FIELDS
from savin.schemas import DeliveryResult, DeliveryStatus, NoticeJob, StoredRegistration
from savin.schemas.escalation import AckChannel, Acknowledgement
from savin.schemas.events import Urgency
from savin.schemas.operators import Role
from savin.schemas.registration import Channel, RegistrationStatus, SealedContact
from savin.schemas.safety import FeedStatusChange, HeldNotice, Hold, HoldKind, HoldState
from savin.topics import ensure_topics, producer

pytestmark = pytest.mark.e2e

NOW = utcnow()
#: The period: a week that ended two weeks ago, midnight to midnight UTC.
START = dt.datetime.combine(NOW.date() - dt.timedelta(days=20), dt.time(), dt.UTC)
END = START + dt.timedelta(days=7)
FROM, TO = START.date().isoformat(), (END - dt.timedelta(days=1)).date().isoformat()
MIN, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)


def t(days: float, hours: float = 0, minutes: float = 0) -> dt.datetime:
    return START + days * DAY + hours * HOUR + minutes * MIN


def iso(at: dt.datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


class Script:
    """The records of a run, and what the report must say about each notice."""

    def __init__(self):
        self.out: list[tuple[str, bytes, object]] = []  # (topic attribute, key, record)
        #: notice id -> the evidence row worked out by hand
        self.expected: dict[str, dict] = {}

    def put(self, topic: str, key: str, record) -> None:
        self.out.append((topic, key.encode(), record))

    def notice(self, event_type: str, event_id: uuid.UUID, occurred: dt.datetime, rid: str, channel: str, *,
               urgent: bool, payload: dict | None = None, hold: uuid.UUID | None = None, topic: str | None = None,
               created: dt.datetime | None = None) -> NoticeJob:
        job = NoticeJob(
            notice_id=uuid.uuid4(), event_id=event_id, event_type=event_type,
            urgency=Urgency.URGENT if urgent else Urgency.ROUTINE, registration_id=rid, offender_id=f"O-{event_id.hex[:6]}",
            channel=Channel(channel), address_sealed="k1:sealed", language="en", timezone="America/Chicago",
            event={"event_id": str(event_id), "event_type": event_type, "occurred_at": occurred.isoformat(),
                   "source": "mo-doc-oms", "payload": payload or {}},
            created_at=created or occurred + 30 * dt.timedelta(seconds=1), ack_code="K7Q2" if urgent else None,
            hold_id=hold)
        if topic is not None:
            self.put(topic, rid, job)
        return job

    def result(self, job: NoticeJob, status: str, at: dt.datetime, source: str = "attempt", **extra) -> None:
        self.put("delivery_results", job.registration_id, DeliveryResult(
            notice_id=job.notice_id, registration_id=job.registration_id, event_id=job.event_id,
            event_type=job.event_type, channel=job.channel, status=DeliveryStatus(status), source=source, at=at,
            **extra))

    def ack(self, rid: str, event_id: uuid.UUID, at: dt.datetime, channel: str = "portal") -> None:
        self.put("acknowledgements", rid, Acknowledgement(registration_id=rid, event_id=event_id,
                                                          channel=AckChannel(channel), at=at))

    def expect(self, job: NoticeJob, verdict: str, outcome: str, *, deadline: dt.datetime, first_try=None,
               delivered=None, acknowledged=None, hold: uuid.UUID | None = None) -> None:
        self.expected[str(job.notice_id)] = {
            "notice_id": str(job.notice_id), "event_id": str(job.event_id), "registration_id": job.registration_id,
            "event_type": job.event_type, "channel": job.channel.value,
            "event_at": iso(dt.datetime.fromisoformat(job.event["occurred_at"])), "first_try_at": iso(first_try),
            "delivered_at": iso(delivered), "acknowledged_at": iso(acknowledged), "deadline_at": iso(deadline),
            "verdict": verdict, "outcome": outcome, "unmeetable": False, "hold_id": str(hold) if hold else None,
            "corrects": None}

    def registration(self, rid: str, at: dt.datetime, language: str, channels: tuple[str, ...],
                     status: str = "active", created: dt.datetime | None = None,
                     cancelled: dt.datetime | None = None) -> None:
        self.put("registrations", rid, StoredRegistration(
            registration_id=rid, offender_id="O-REG", language=language, event_types=None, pin_hash=None,
            status=RegistrationStatus(status), timezone="America/Chicago", updated_at=at, created_at=created,
            cancelled_at=cancelled,
            contacts=tuple(SealedContact(channel=Channel(c), address_sealed="k1:sealed", verified=True)
                           for c in channels)))


def scripted_run() -> Script:
    s = Script()
    R = [f"R{n:02d}" for n in range(25)]  # R[1] .. R[24]

    # ---- registrations: new, changed and cancelled in the period, by language and channel -------------
    for n in range(1, 11):
        s.registration(R[n], t(0, 1), "en", ("sms", "email"))        # new / en: sms 10, email 10
    for n in (11, 12):
        s.registration(R[n], t(0, 2), "es", ("sms",))                 # new / es: sms 2
    for n in range(13, 21):
        s.registration(R[n], t(-10), "en", ("sms",))                  # before the period
    for n in range(13, 19):
        s.registration(R[n], t(2), "en", ("sms",))                    # changed / en: sms 6
    s.registration(R[13], t(2, 1), "en", ("sms",))                    # changed again: still one registration
    for n in (19, 20):
        s.registration(R[n], t(2), "en", ("sms",), status="cancelled")  # cancelled / en: sms 2
    s.registration(R[21], t(8), "en", ("sms",))                       # after the period
    # Compacted: only each one's newest record is left, and the times it carries say the rest.
    for n in (22, 23):
        s.registration(R[n], t(3), "en", ("sms",), created=t(0, 3))   # new and changed / en: sms 2 and 2
    s.registration(R[24], t(2, 2), "en", ("sms",), status="cancelled", created=t(-10),
                   cancelled=t(2, 2))                                 # cancelled / en: sms 1

    # ---- a RELEASED notice made before the period: not in the report -------------------------------
    e0 = uuid.uuid4()
    s.result(s.notice("RELEASED", e0, t(-2), R[1], "sms", urgent=True, topic="notices_urgent"), "delivered", t(-2, 1))

    # ---- RELEASED E1 to R01-R10 on sms and email; an hour is allowed -----------------------------
    e1, o1 = uuid.uuid4(), t(1, 10)
    for n in range(1, 11):
        sms = s.notice("RELEASED", e1, o1, R[n], "sms", urgent=True, topic="notices_urgent")
        email = s.notice("RELEASED", e1, o1, R[n], "email", urgent=True, topic="notices_urgent")
        s.result(sms, "accepted", o1 + MIN, provider="twilio")
        s.result(email, "accepted", o1 + MIN, provider="smtp")
        late = n in (9, 10)
        receipt = o1 + (2 * HOUR if late else 20 * MIN)
        s.result(sms, "sent", receipt - 10 * dt.timedelta(seconds=1), source="callback")
        s.result(sms, "delivered", receipt, source="callback")
        acked = o1 + 30 * MIN if n <= 5 else None
        if acked:
            s.ack(R[n], e1, acked)
        s.expect(sms, "missed" if late else "met", "delivered", deadline=o1 + HOUR, first_try=o1 + MIN,
                 delivered=receipt, acknowledged=acked)
        # Email has no delivery receipt: the mail server taking it is its delivery.
        s.expect(email, "met", "accepted", deadline=o1 + HOUR, first_try=o1 + MIN, delivered=o1 + MIN,
                 acknowledged=acked)
    s.ack(R[1], e1, o1 + 3 * HOUR, channel="sms")  # a later one: the earliest counts

    # ---- ESCAPED E2 to R11 and R12 on sms ------------------------------------------------------
    e2, o2 = uuid.uuid4(), t(2, 3)
    r11 = s.notice("ESCAPED", e2, o2, R[11], "sms", urgent=True, topic="notices_urgent")
    s.result(r11, "retrying", o2 + MIN, error_code="30003")
    s.result(r11, "failed", o2 + 6 * MIN, error_code="30003")
    s.ack(R[11], e2, o2 + 10 * MIN, channel="voice")  # reached by a ladder's call instead
    s.expect(r11, "met", "failed", deadline=o2 + HOUR, first_try=o2 + MIN, acknowledged=o2 + 10 * MIN)
    r12 = s.notice("ESCAPED", e2, o2, R[12], "sms", urgent=True, topic="notices_urgent")
    s.result(r12, "accepted", o2 + MIN)
    s.result(r12, "delivered", o2 + 5 * MIN, source="callback")
    s.expect(r12, "met", "delivered", deadline=o2 + HOUR, first_try=o2 + MIN, delivered=o2 + 5 * MIN)

    # ---- a mass hold on RELEASED E3, rejected: each held notice recorded as rejected -------------
    h1, e3, o3 = uuid.uuid4(), uuid.uuid4(), t(3, 4)
    s.put("holds", str(h1), Hold(hold_id=h1, kind=HoldKind.MASS, state=HoldState.OPEN, reason="burst",
                                 source="mo-doc-oms", event_type="RELEASED", opened_at=o3 + MIN))
    for n in (13, 14, 15):
        job = s.notice("RELEASED", e3, o3, R[n], "sms", urgent=True)
        s.put("held_notices", str(h1), HeldNotice(hold_id=h1, job=job, at=o3 + MIN))
        s.result(job, "rejected", t(3, 5), hold_id=h1, decided_by="operator:otto")
        s.expect(job, "not_owed", "rejected", deadline=o3 + HOUR, hold=h1)
    s.put("holds", str(h1), Hold(hold_id=h1, kind=HoldKind.MASS, state=HoldState.REJECTED, reason="burst",
                                 source="mo-doc-oms", event_type="RELEASED", opened_at=o3 + MIN,
                                 decided_by="operator:otto", decided_at=t(3, 5), why="a test load", notices=3))

    # ---- an offender's block on TRANSFERRED E4, approved: its notices go out, within 5 days --------
    h2, e4, o4 = uuid.uuid4(), uuid.uuid4(), t(4)
    for n in (16, 17):
        job = s.notice("TRANSFERRED", e4, o4, R[n], "sms", urgent=False, hold=None)
        s.put("held_notices", str(h2), HeldNotice(hold_id=h2, job=job, at=o4 + MIN))
        released = job.model_copy(update={"hold_id": h2})
        s.put("notices_routine", R[n], released)
        s.result(released, "accepted", o4 + 2 * DAY - MIN)
        s.result(released, "delivered", o4 + 2 * DAY, source="callback")
        s.expect(job, "met", "delivered", deadline=o4 + 5 * DAY, first_try=o4 + 2 * DAY - MIN,
                 delivered=o4 + 2 * DAY, hold=h2)
    s.put("holds", str(h2), Hold(hold_id=h2, kind=HoldKind.OFFENDER, state=HoldState.APPROVED, reason="record fix",
                                 offender_id="O-4", opened_at=o4 - HOUR, opened_by="operator:otto",
                                 decided_by="operator:ada", decided_at=o4 + 2 * DAY - 2 * MIN, notices=2))
    # A hold opened before the period is not counted.
    h3 = uuid.uuid4()
    s.put("holds", str(h3), Hold(hold_id=h3, kind=HoldKind.MASS, state=HoldState.OPEN, reason="burst",
                                 source="kc-jail", event_type="ESCAPED", opened_at=t(-3)))

    # ---- RELEASED E5 retracted before its notice went out: cancelled ------------------------------
    e5, o5 = uuid.uuid4(), t(5)
    job = s.notice("RELEASED", e5, o5, R[18], "sms", urgent=True, topic="notices_urgent")
    s.result(job, "cancelled", o5 + MIN)
    s.expect(job, "not_owed", "cancelled", deadline=o5 + HOUR)

    # ---- HEARING_SCHEDULED E6, 90 days ahead: 30 days before it is still to come --------------------
    e6, o6 = uuid.uuid4(), t(5, 6)
    starts = (NOW + 90 * DAY).replace(microsecond=0)
    for n in range(13, 19):
        job = s.notice("HEARING_SCHEDULED", e6, o6, R[n], "sms", urgent=False, topic="notices_routine",
                       payload={"hearing_id": "H-1", "starts_at": starts.isoformat()})
        s.result(job, "accepted", o6 + MIN)
        s.expect(job, "pending", "accepted", deadline=starts - 30 * DAY, first_try=o6 + MIN)

    # ---- feed status, as the watchdog records it (an ok names the event that ended the silence) -------
    def feed(source: str, state: str, at: dt.datetime, last: dt.datetime | None = None) -> None:
        s.put("feed_status", source, FeedStatusChange(source=source, state=state, last_event_at=last, at=at))

    feed("mo-doc-oms", "stale", t(1, 1), last=t(1))           # silent since t(1): down from then,
    feed("mo-doc-oms", "ok", t(1, 3), last=t(1, 2, 45))       # up again at t(1, 2:45): 2.75 hours
    feed("stl-jail", "stale", t(-2), last=t(-2, -1))          # down when the period began,
    feed("stl-jail", "ok", t(0, 11, 40), last=t(0, 11, 30))   # 11.5 hours of it
    feed("kc-jail", "low", t(3), last=t(2, 23, 58))           # low is not down
    feed("kc-jail", "ok", t(3, 2), last=t(3, 1, 59))
    return s


# The tables, worked out by hand (rows sorted; the totals row last; "<5" for 1 to 4).
REGISTRATIONS = [
    {"change": "cancelled", "language": "en", "email": 0, "sms": "<5", "total": "<5"},
    {"change": "changed", "language": "en", "email": 0, "sms": 8, "total": 8},
    {"change": "new", "language": "en", "email": 10, "sms": 12, "total": 22},
    {"change": "new", "language": "es", "email": 0, "sms": "<5", "total": "<5"},
    {"change": "total", "language": "", "email": 10, "sms": 25, "total": 35},
]
NOTICES = [
    {"event_type": "ESCAPED", "channel": "sms", "accepted": 0, "cancelled": 0, "delivered": "<5", "failed": "<5",
     "rejected": 0, "total": "<5"},
    {"event_type": "HEARING_SCHEDULED", "channel": "sms", "accepted": 6, "cancelled": 0, "delivered": 0,
     "failed": 0, "rejected": 0, "total": 6},
    {"event_type": "RELEASED", "channel": "email", "accepted": 10, "cancelled": 0, "delivered": 0, "failed": 0,
     "rejected": 0, "total": 10},
    {"event_type": "RELEASED", "channel": "sms", "accepted": 0, "cancelled": "<5", "delivered": 10, "failed": 0,
     "rejected": "<5", "total": 14},
    {"event_type": "TRANSFERRED", "channel": "sms", "accepted": 0, "cancelled": 0, "delivered": "<5", "failed": 0,
     "rejected": 0, "total": "<5"},
    {"event_type": "total", "channel": "", "accepted": 16, "cancelled": "<5", "delivered": 13, "failed": "<5",
     "rejected": "<5", "total": 34},
]
# ESCAPED's 1 of 2 are small; RELEASED's 5 of 10 would then give them away from the totals,
# so they are suppressed too (and so is RELEASED's rate, which would give them back).
ACKNOWLEDGEMENTS = [
    {"event_type": "ESCAPED", "acknowledged": "<5", "unacknowledged": "<5", "total": "<5"},
    {"event_type": "RELEASED", "acknowledged": "suppressed", "unacknowledged": "suppressed", "total": "suppressed"},
    {"event_type": "total", "acknowledged": 6, "unacknowledged": 6, "total": 12},
]
RATES = {"ESCAPED": "<5", "RELEASED": "suppressed", "total": 0.5}
# Delivered sms, minutes from the event: 5, 20 x 8, 120 x 2, 2880 x 2 (13): median 20 min; p95 at rank
# 11.4 of 0..12, between 2880 and 2880. Email (taken by the mail server): 1 minute x 10. All 23: 1 x 10, 5,
# 20 x 8, 120 x 2, 2880 x 2: median (rank 11) 20 min; p95 at rank 20.9, 120 + 0.9 x (2880 - 120) = 2604 min.
DELIVERY = {"all": {"count": 23, "median": 1200.0, "p95": 156240.0},
            "sms": {"count": 13, "median": 1200.0, "p95": 172800.0},
            "email": {"count": 10, "median": 60.0, "p95": 60.0}}
DOWNTIME = {"kc-jail": 0.0, "mo-doc-oms": 2.75, "stl-jail": 11.5}
HOLDS = [{"kind": "mass", "approved": 0, "rejected": 1, "total": 1},
         {"kind": "offender", "approved": 1, "rejected": 0, "total": 1},
         {"kind": "total", "approved": 1, "rejected": 1, "total": 2}]
HELD = [{"kind": "mass", "rejected": "<5", "released": 0, "total": "<5"},
        {"kind": "offender", "rejected": 0, "released": "<5", "total": "<5"},
        {"kind": "total", "rejected": "<5", "released": "<5", "total": 5}]


def check_statistics(doc: dict) -> None:
    assert doc["period"] == {"from": iso(START), "to": iso(END)}
    for name, rows in (("registrations", REGISTRATIONS), ("notices", NOTICES), ("acknowledgements", ACKNOWLEDGEMENTS),
                       ("holds", HOLDS), ("held_notices", HELD)):
        assert [*doc[name]["rows"], doc[name]["totals"]] == rows, name
    assert doc["acknowledgement_rates"] == RATES
    assert doc["delivery_times"] == DELIVERY
    assert doc["feed_downtime_hours"] == DOWNTIME


def check_evidence(rows: list[dict], expected: dict[str, dict]) -> None:
    got = {r["notice_id"]: r for r in rows}
    assert set(got) == set(expected), "the notices made in the period, and only those"
    for nid, want in expected.items():
        assert got[nid] == want, nid
    assert Counter(r["verdict"] for r in rows) == {"met": 22, "missed": 2, "pending": 6, "not_owed": 4}


def from_csv(text: str) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and tuple(rows[0]) == EVIDENCE_FIELDS
    return [{k: (None if v == "" else v == "true" if k == "unmeetable" else v) for k, v in r.items()} for r in rows]


async def publish(settings, script: Script) -> None:
    from savin.topics import Topics

    topics = Topics(settings)
    await ensure_topics(settings.kafka_bootstrap, topics.specs(), settings.replication_factor)
    p = producer(settings.kafka_bootstrap)
    await p.start()
    try:
        for attr, key, record in script.out:
            await p.send_and_wait(getattr(topics, attr), record.model_dump_json().encode(), key=key)
    finally:
        await p.stop()


class Checked:
    """API calls validated against the served OpenAPI document."""

    def __init__(self, url: str, token: str):
        self.http = api_client(url, token)
        self.url = url
        self.spec = OpenAPI.from_dict(self.http.get("/openapi.json").json())

    def get(self, path: str, params: dict):
        r = self.http.get(path, params=params)
        request = MockRequest(self.url, "get", "/api/v1" + path, args=params,
                              headers={"Authorization": self.http.headers["Authorization"]})
        self.spec.validate_request(request)
        self.spec.validate_response(request, MockResponse(r.content, r.status_code,
                                                          content_type=r.headers.get("content-type", "")))
        return r


async def test_reports_of_a_scripted_run(stack, browser_page, axe_script, tmp_path):
    s = stack.settings()
    script = scripted_run()
    token, whole = issue_token("vera", Role.VIEWER, NOW)
    await write_records(s, [new_account("vera", Role.VIEWER, PASSWORD, NOW, "cli"), token])
    await publish(s, script)
    env = stack.env()

    # ---- savin deadlines report: CSV to stdout, JSON to a file --------------------------------------
    done = savin(["deadlines", "report", "--from", FROM, "--to", TO, "--format", "csv"], env=env)
    assert done.returncode == 0, done.stderr
    cli_csv = done.stdout
    check_evidence(from_csv(cli_csv), script.expected)
    out = tmp_path / "evidence.json"
    done = savin(["deadlines", "report", "--from", FROM, "--to", TO, "--format", "json", "--output", str(out)],
                 env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["period"] == {"from": iso(START), "to": iso(END)} and doc["policy"].endswith("deadlines.toml")
    check_evidence(doc["notices"], script.expected)
    # Ids and times only: nothing a person could be found by.
    assert "sealed" not in cli_csv and "K7Q2" not in cli_csv

    # ---- savin stats: JSON, CSV and the table -------------------------------------------------------
    done = savin(["stats", "--from", FROM, "--to", TO, "--format", "json"], env=env)
    assert done.returncode == 0, done.stderr
    check_statistics(json.loads(done.stdout))
    done = savin(["stats", "--from", FROM, "--to", TO, "--format", "csv"], env=env)
    assert done.returncode == 0, done.stderr
    figures = {(r["table"], r["row"], r["column"]): r["value"] for r in csv.DictReader(io.StringIO(done.stdout))}
    assert figures[("notices", "RELEASED/sms", "rejected")] == "<5"
    assert figures[("notices", "total", "total")] == "34"
    assert figures[("acknowledgements", "RELEASED", "acknowledged")] == "suppressed"
    assert figures[("feed_downtime_hours", "mo-doc-oms", "hours")] == "2.75"
    assert figures[("delivery_times", "email", "median")] == "60.0"
    done = savin(["stats", "--from", FROM, "--to", TO], env={**env, "COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    assert "HEARING_SCHEDULED" in done.stdout and "<5" in done.stdout and "stl-jail" in done.stdout

    # ---- dates it cannot read -------------------------------------------------------------------------
    for args, message in ((["--from", "2026-13-01", "--to", TO], "--from: '2026-13-01' is not a date"),
                          (["--from", FROM, "--to", "last week"], "--to: 'last week' is not a date"),
                          (["--from", TO, "--to", FROM], "--to must be after --from")):
        for command in (["deadlines", "report"], ["stats"]):
            done = savin([*command, *args], env=env)
            assert done.returncode == 2, (command, args, done.stdout)
            assert message in done.stderr, done.stderr
            assert "Traceback" not in done.stderr

    # ---- the API ------------------------------------------------------------------------------------
    web = stack.start_web()
    api = Checked(web.url, whole)
    period = {"from": FROM, "to": TO}
    r = api.get("/stats", period)
    assert r.status_code == 200, r.text
    check_statistics(r.json())
    r = api.get("/deadlines", period)
    assert r.status_code == 200, r.text
    check_evidence(r.json()["notices"], script.expected)
    r = api.get("/stats", {"from": "2026-02-30", "to": TO})
    assert r.status_code == 400 and r.json()["field"] == "from" and "is not a date" in r.json()["error"]

    # ---- the console's page, and its downloads ---------------------------------------------------------
    shots = screenshots_dir(tmp_path)
    for width, height, name in ((1280, 900, "desktop"), (360, 740, "phone")):
        page = await browser_page(width, height)
        await sign_in(page, web.url, "vera")
        await page.get_by_role("link", name="Reports").click()
        await page.get_by_label("From").fill(FROM)
        await page.get_by_label("To", exact=True).fill(TO)
        await page.get_by_role("button", name="Show").click()
        await page.wait_for_url(re.compile(r"/console/reports\?"))
        totals = page.locator("#notices tbody tr").last
        assert await totals.locator("[data-cell=total]").inner_text() == "34"
        released_sms = page.locator("#notices tbody tr").nth(3)
        assert "RELEASED" in await released_sms.inner_text()
        assert await released_sms.locator("[data-cell=rejected]").inner_text() == "<5"
        assert "suppressed" in await page.locator("#acknowledgements").inner_text()
        assert "20 min 0 s" in await page.locator("#delivery-times").inner_text()
        assert "11.50" in await page.locator("#downtime").inner_text()
        await check_page(page, axe_script, shots, f"console-reports-{name}")
    href = await page.locator("#deadlines-csv").get_attribute("href")
    got = await page.request.get(web.url + href)
    assert got.status == 200 and got.headers["content-type"].startswith("text/csv")
    assert f"savin-deadlines-{FROM}-{TO}.csv" in got.headers["content-disposition"]
    assert await got.text() == cli_csv
    href = await page.locator("#deadlines-json").get_attribute("href")
    got = await page.request.get(web.url + href)
    check_evidence(json.loads(await got.text())["notices"], script.expected)
    # A date it cannot read is said next to its field.
    await page.goto(f"{web.url}/console/reports?from=2026-11-31&to={TO}")
    assert "is not a date" in await page.locator(".error-summary").inner_text()
    await check_page(page, axe_script, shots, "console-reports-error-phone")

    # Each download of the evidence is on operator-audit, with who and the period.
    audit = [json.loads(r.value) async for r in read_topic(s.kafka_bootstrap, stack.topics.operator_audit)]
    downloads = [a for a in audit if a["action"] == "reports.deadlines"]
    assert {a["actor"] for a in downloads} == {"operator:vera", f"token:{token.token_id}"}
    assert all(iso(START) in a["detail"] and "34 notices" in a["detail"] for a in downloads)


async def test_reports_of_a_real_worker_run(stack):
    """The same reports from the records a real worker leaves: two registrations told of a release
    and a transfer by sms (delivered, by the fake Twilio's callbacks) and email (accepted)."""
    from support import event, eventually, registration

    await stack.import_registrations([
        registration("R-W1", "MO-REPORTS-1", sms="+15735550171", email="w1.reports@example.org"),
        registration("R-W2", "MO-REPORTS-1", sms="+15735550172", language="es"),
    ])
    stack.start_worker(SAVIN_QUIET_HOURS="none")
    stack.start_web()
    await stack.wait_caught_up(stack.topics.registrations)
    occurred = (utcnow() - 2 * MIN).replace(microsecond=0)
    released, transferred = (event(kind, "MO-REPORTS-1", occurred_at=occurred.isoformat())
                             for kind in ("RELEASED", "TRANSFERRED"))
    await stack.publish_events([json.dumps(released), json.dumps(transferred)])

    async def settled():
        results = await stack.results()
        # A provider's callback names the notice, not its event.
        delivered = {r.notice_id for r in results if r.status is DeliveryStatus.DELIVERED and r.channel is Channel.SMS}
        accepted = {r.notice_id for r in results if r.status is DeliveryStatus.ACCEPTED and r.channel is Channel.EMAIL}
        return len(delivered) == 4 and len(accepted) == 2

    await eventually(settled, 90, "four sms notices delivered and two emails accepted")
    today = utcnow().date()
    period = ["--from", (today - DAY).isoformat(), "--to", (today + DAY).isoformat()]
    done = savin(["deadlines", "report", *period, "--format", "json"], env=stack.env())
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["notices"]
    got = {(r["event_type"], r["registration_id"], r["channel"]): r for r in rows}
    assert set(got) == {(t, rid, ch) for t in ("RELEASED", "TRANSFERRED")
                        for rid, ch in (("R-W1", "sms"), ("R-W1", "email"), ("R-W2", "sms"))}
    for (event_type, rid, channel), row in got.items():
        assert row["event_at"] == iso(occurred)
        rule = HOUR if event_type == "RELEASED" else 5 * DAY
        assert row["deadline_at"] == iso(occurred + rule)
        assert row["first_try_at"] is not None
        # An sms by the fake Twilio's delivery receipt, an email once the SMTP server took it.
        assert (row["verdict"], row["outcome"]) == ("met", "delivered" if channel == "sms" else "accepted"), row
        # (A receipt may be stamped a moment before the try's own result: the fake Twilio calls back
        # at once, and the deliver stage stamps its result once the provider has answered.)
        assert max(row["first_try_at"], row["delivered_at"]) <= row["deadline_at"]

    done = savin(["stats", *period, "--format", "json"], env=stack.env())
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    # Six notices in all; every cell of them small.
    assert figures["notices"]["totals"] == {"event_type": "total", "channel": "", "accepted": "<5",
                                            "delivered": "<5", "total": 6}
    assert figures["delivery_times"]["sms"] == {"count": "<5", "median": None, "p95": None}
    assert figures["registrations"]["totals"] == {"change": "total", "language": "", "email": "<5", "sms": "<5",
                                                  "total": "<5"}
