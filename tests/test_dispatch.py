"""The dispatcher with recording fakes: ordering per recipient, outcome classes."""

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from savin.domain.matching import notices_for
from savin.notifiers.base import Notifier, PermanentFailure, TemporaryFailure
from savin.notifiers.dispatcher import Dispatcher
from savin.schemas import DeliveryStatus, Registration, parse_event
from savin.sealing import Sealer, new_key, seal_registration
from savin.settings import DataKeys

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)


class FakeRenderer:
    def render(self, event, channel, language, timezone):
        return f"{event['event_type']}/{channel}/{language}"


class RecordingNotifier(Notifier):
    """Records (address, content) per send; fails addresses listed in ``faults``."""

    provider = "fake"

    def __init__(self, sealer, faults=None, delay=0.0):
        super().__init__(sealer)
        self.sent: list[tuple[str, str]] = []
        self.faults = faults or {}
        self.delay = delay

    async def try_send(self, address, message):
        await asyncio.sleep(self.delay)
        if address in self.faults:
            raise self.faults[address]
        self.sent.append((address, message.content))
        return f"ref-{len(self.sent)}"


@pytest.fixture
def sealer():
    return Sealer(DataKeys.parse(new_key()))


def jobs_for(sealer, *event_types):
    regs = [seal_registration(Registration.model_validate_json(l), sealer, NOW)
            for l in (EXAMPLES / "registrations.jsonl").read_text().splitlines()]
    jobs = []
    for t in event_types:
        jobs += notices_for(parse_event((EXAMPLES / "events" / f"{t}.json").read_text()), regs, NOW)
    return jobs


async def test_sends_open_the_sealed_address_and_keep_each_recipients_order(sealer):
    sms = RecordingNotifier(sealer, delay=0.01)
    email = RecordingNotifier(sealer)
    d = Dispatcher(FakeRenderer(), {"sms": sms, "email": email})
    jobs = jobs_for(sealer, "RELEASE_SCHEDULED", "RELEASED", "ESCAPED")
    outcomes = await d.send_batch(jobs)
    assert [o.status for o in outcomes] == [DeliveryStatus.ACCEPTED] * len(jobs)
    assert [o.job for o in outcomes] == jobs
    per_number = {}
    for address, content in sms.sent:
        per_number.setdefault(address, []).append(content.split("/")[0])
    assert per_number == {
        "+15735550101": ["RELEASE_SCHEDULED", "RELEASED", "ESCAPED"],
        "+15735550102": ["RELEASE_SCHEDULED", "RELEASED", "ESCAPED"],
    }
    assert {a for a, _ in email.sent} == {"alice@example.org", "beatriz@example.org"}


async def test_outcomes_classify_temporary_permanent_and_opt_out(sealer):
    sms = RecordingNotifier(sealer, faults={
        "+15735550101": TemporaryFailure("twilio: 20429 rate limited", "20429"),
        "+15735550102": PermanentFailure("twilio: 21610 unsubscribed", "21610", suppress=True),
    })
    email = RecordingNotifier(sealer, faults={"alice@example.org": PermanentFailure("smtp: 550", "550")})
    d = Dispatcher(FakeRenderer(), {"sms": sms, "email": email})
    outcomes = {(o.job.registration_id, o.job.channel.value): o for o in await d.send_batch(jobs_for(sealer, "RELEASED"))}
    assert outcomes["R-1001", "sms"].status is DeliveryStatus.RETRYING
    assert outcomes["R-1001", "sms"].error_code == "20429"
    assert outcomes["R-1002", "sms"].status is DeliveryStatus.SUPPRESSED
    assert outcomes["R-1001", "email"].status is DeliveryStatus.FAILED
    assert outcomes["R-1002", "email"].status is DeliveryStatus.ACCEPTED


async def test_unexpected_errors_and_render_faults_are_outcomes_not_crashes(sealer):
    class Boom(RecordingNotifier):
        async def try_send(self, address, message):
            raise RuntimeError("bug")

    class BadRenderer:
        def render(self, event, channel, language, timezone):
            if channel == "email":
                raise KeyError("payload.facility")
            return "ok"

    d = Dispatcher(BadRenderer(), {"sms": Boom(sealer), "email": RecordingNotifier(sealer)})
    outcomes = await d.send_batch(jobs_for(sealer, "RELEASED"))
    by_channel = {o.job.channel.value: o.status for o in outcomes}
    assert by_channel == {"sms": DeliveryStatus.RETRYING, "email": DeliveryStatus.FAILED}


async def test_missing_channel_is_a_permanent_failure(sealer):
    d = Dispatcher(FakeRenderer(), {"email": RecordingNotifier(sealer)})
    outcomes = await d.send_batch(jobs_for(sealer, "RELEASED"))
    assert {o.status for o in outcomes if o.job.channel.value == "sms"} == {DeliveryStatus.FAILED}
