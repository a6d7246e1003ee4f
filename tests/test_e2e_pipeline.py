"""End to end: registrations and custody events through a real broker, the
worker as its own process, notices arriving at the fake Twilio and the SMTP server."""

import json
import random
import re
import uuid
from pathlib import Path

import pytest
from support import event

from savin.domain.escalation import ack_code
from savin.rendering import EmailLinks, Renderer
from savin.schemas import parse_event

pytestmark = pytest.mark.e2e

O1, O2 = "MO-E2E-1", "MO-E2E-2"


def phone() -> str:
    return "+1573" + "".join(random.choice("0123456789") for _ in range(7))


def victims():
    tag = uuid.uuid4().hex[:6]
    return {
        "A": dict(name=f"Annabel Quillfeather {tag}", sms=phone(), email=f"annabel.{tag}@example.org", language="en"),
        "B": dict(name=f"Benita Zarzamora {tag}", sms=phone(), email=f"benita.{tag}@example.org", language="es"),
        "C": dict(name=f"Cordelia Vantongeren {tag}", sms=phone(), email=f"cordelia.{tag}@example.org", language="en"),
    }


def registration(rid, offender, v, **extra):
    return json.dumps({
        "registration_id": rid, "offender_id": offender, "name": v["name"], "language": v["language"],
        "contacts": [{"channel": "sms", "address": v["sms"], "verified": True},
                     {"channel": "email", "address": v["email"], "verified": True}],
        **extra,
    })


async def test_events_reach_every_registered_victim_once_in_their_language(stack, kafka_broker):
    v = victims()
    hearings = ["HEARING_SCHEDULED", "HEARING_RESCHEDULED", "HEARING_CANCELLED", "HEARING_DECISION"]
    regs = [
        registration("R-A", O1, v["A"]),
        registration("R-B", O1, v["B"]),
        registration("R-C1", O1, v["C"]),
        registration("R-C2", O2, v["C"], event_types=hearings),
    ]
    worker = stack.start_worker(SAVIN_LOG_LEVEL="debug")
    report = await stack.import_registrations(regs)
    assert report.published == 4 and report.errors == []
    # Victim C cancels the registration for O1 (an update of the same registration).
    cancel = json.loads(regs[2]) | {"status": "cancelled"}
    await stack.import_registrations([json.dumps(cancel)])
    await stack.wait_caught_up(stack.topics.registrations)

    scheduled = event("RELEASE_SCHEDULED", O1)
    hearing = event("HEARING_SCHEDULED", O2)
    restitution = event("RESTITUTION_PAYMENT", O2)  # C wants hearings only
    released = event("RELEASED", O1)
    escaped = event("ESCAPED", O1)
    await stack.publish_events([json.dumps(e) for e in (scheduled, hearing, restitution, released)])
    await stack.publish_events([json.dumps(released)])  # the same event_id again
    malformed = json.dumps(event("ESCAPED", O1, occurred_at="2026-11-20 09:25") | {"payload": {}})
    await stack.publish_raw(malformed.encode(), key=O1.encode())
    await stack.publish_events([json.dumps(escaped)])

    for topic in (stack.topics.custody_events, stack.topics.notices_urgent, stack.topics.notices_routine):
        await stack.wait_caught_up(topic, timeout=60)
    assert stack.twilio.wait_for(7, timeout=30)
    assert stack.smtp.wait_for(7, timeout=30)

    renderer = Renderer()

    def expected(ev, channel, language, registration_id=None):
        parsed = parse_event(json.dumps(ev))
        links = EmailLinks("unsubscribe", "manage") if channel == "email" else None
        # An urgent notice asks for the registration's acknowledgement code.
        code = (ack_code(ev["event_id"], registration_id)
                if registration_id and parsed.urgency.value == "urgent" else None)
        return renderer.render(parsed.model_dump(mode="json"), channel, language, "America/Chicago", links=links,
                               ack_code=code)

    sms = {}
    for m in stack.twilio.messages:
        sms.setdefault(m.to, []).append(m.body)
    o1_events = [scheduled, released, escaped]
    assert {k: sorted(bodies) for k, bodies in sms.items()} == {
        v["A"]["sms"]: sorted(expected(e, "sms", "en", "R-A").text for e in o1_events),
        v["B"]["sms"]: sorted(expected(e, "sms", "es", "R-B").text for e in o1_events),
        v["C"]["sms"]: [expected(hearing, "sms", "en", "R-C2").text],
    }
    # Urgent notices have their own topic, so they may overtake routine ones;
    # within one urgency a registrant's notices keep the events' order.
    for who, language in (("A", "en"), ("B", "es")):
        got = sms[v[who]["sms"]]
        rid = f"R-{who}"
        assert (got.index(expected(released, "sms", language, rid).text)
                < got.index(expected(escaped, "sms", language, rid).text))
    mail = {}
    for m in stack.smtp.messages:
        (rcpt,) = m.rcpt_tos
        mail.setdefault(rcpt, []).append(str(m.message["Subject"]))
    assert {k: sorted(s) for k, s in mail.items()} == {
        v["A"]["email"]: sorted(expected(e, "email", "en").subject for e in o1_events),
        v["B"]["email"]: sorted(expected(e, "email", "es").subject for e in o1_events),
        v["C"]["email"]: [expected(hearing, "email", "en").subject],
    }
    assert stack.twilio.rejected == []

    (letter,) = await stack.dead_letters()
    assert letter.source_topic == stack.topics.custody_events
    assert "ESCAPED.occurred_at" in letter.reason and "ESCAPED.payload.facility" in letter.reason

    results = await stack.results()
    accepted = {r.notice_id for r in results if r.status.value == "accepted"}
    assert len(accepted) == 14

    # Nothing personal in plain text: broker data, worker state, worker log.
    worker.stop()
    secrets = [s for person in v.values() for s in (person["name"], person["sms"], person["email"])]
    secrets += [s.split("@")[0] for s in secrets if "@" in s]
    places = [stack.workdir] + ([kafka_broker.data_dir] if kafka_broker else [])
    assert (stack.workdir / "worker.log").stat().st_size > 0
    # In the session's broker, other tests' topics are not this test's business.
    def other_namespace(path: Path) -> bool:
        partition_dir = path.parent.name  # "<topic>-<partition>"
        return (re.fullmatch(r".+-\d+", partition_dir) is not None and not partition_dir.startswith("__")
                and not partition_dir.startswith(stack.namespace))

    leaks = scan_for(places, secrets, skip=other_namespace)
    assert leaks == [], leaks


def scan_for(roots, needles, skip=lambda path: False) -> list[str]:
    """Every (file, needle) where a needle appears in plain text (UTF-8 or UTF-16)."""
    variants = {}
    for n in needles:
        variants[n.encode()] = n
        variants[n.encode("utf-16-le")] = n
    pattern = re.compile(b"|".join(re.escape(v) for v in variants))
    hits = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not skip(path):
                for found in {m.group() for m in pattern.finditer(path.read_bytes())}:
                    hits.append(f"{path}: {variants[found]}")
    return hits
