"""The dispatcher with recording fakes: notifiers found by their channel, ordering
per recipient, outcome classes; the notifier base's timing and configuration faults."""

import asyncio
import datetime as dt

import pytest
from support import EXAMPLES

from savin import metrics
from savin.domain.matching import notices_for
from savin.notifiers.base import ConfigurationFault, Notifier, PermanentFailure, TemporaryFailure
from savin.notifiers.dispatcher import Dispatcher
from savin.schemas import DeliveryStatus, Registration, parse_event
from savin.sealing import new_key, seal_registration

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)


class FakeRenderer:
    def render(self, event, channel, language, timezone):
        return f"{event['event_type']}/{channel}/{language}"


class RecordingNotifier(Notifier):
    """Records (address, content) per send; fails addresses listed in ``faults``."""

    def __init__(self, sealer, channel, faults=None, delay=0.0):
        super().__init__(sealer)
        self.channel = channel
        self.provider = f"fake-{channel}"
        self.sent: list[tuple[str, str]] = []
        self.faults = faults or {}
        self.delay = delay

    async def try_send(self, address, message):
        await asyncio.sleep(self.delay)
        if address in self.faults:
            raise self.faults[address]
        self.sent.append((address, message.content))
        return f"ref-{len(self.sent)}"


def jobs_for(sealer, *event_types):
    regs = [seal_registration(Registration.model_validate_json(l), sealer, NOW)
            for l in (EXAMPLES / "registrations.jsonl").read_text().splitlines()]
    jobs = []
    for t in event_types:
        jobs += notices_for(parse_event((EXAMPLES / "events" / f"{t}.json").read_text()), regs, NOW)
    return jobs


async def test_sends_open_the_sealed_address_and_keep_each_recipients_order(sealer):
    sms = RecordingNotifier(sealer, "sms", delay=0.01)
    email = RecordingNotifier(sealer, "email")
    d = Dispatcher(FakeRenderer(), [email, sms])
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
    sms = RecordingNotifier(sealer, "sms", faults={
        "+15735550101": TemporaryFailure("twilio: 20429 rate limited", "20429"),
        "+15735550102": PermanentFailure("twilio: 21610 unsubscribed", "21610", suppress=True),
    })
    email = RecordingNotifier(sealer, "email", faults={"alice@example.org": PermanentFailure("smtp: 550", "550")})
    d = Dispatcher(FakeRenderer(), [sms, email])
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

    d = Dispatcher(BadRenderer(), [Boom(sealer, "sms"), RecordingNotifier(sealer, "email")])
    outcomes = await d.send_batch(jobs_for(sealer, "RELEASED"))
    by_channel = {o.job.channel.value: o.status for o in outcomes}
    assert by_channel == {"sms": DeliveryStatus.RETRYING, "email": DeliveryStatus.FAILED}


async def test_missing_channel_is_a_permanent_failure(sealer):
    d = Dispatcher(FakeRenderer(), [RecordingNotifier(sealer, "email")])
    outcomes = await d.send_batch(jobs_for(sealer, "RELEASED"))
    assert {o.status for o in outcomes if o.job.channel.value == "sms"} == {DeliveryStatus.FAILED}


def test_notifiers_are_found_by_the_channel_they_declare(sealer):
    from savin.notifiers.smtp_email import SmtpEmail
    from savin.notifiers.twilio_sms import TwilioSMS

    sms = TwilioSMS(sealer, "AC" + "1" * 32, "token", from_number="+15005550006")
    email = SmtpEmail(sealer, "127.0.0.1", 25)
    d = Dispatcher(FakeRenderer(), [email, sms])
    assert (d.notifier_for("sms"), d.notifier_for("email"), d.notifier_for("voice")) == (sms, email, None)
    assert (TwilioSMS.channel, SmtpEmail.channel) == ("sms", "email")
    with pytest.raises(ValueError, match="two notifiers for channel sms"):
        Dispatcher(FakeRenderer(), [sms, RecordingNotifier(sealer, "sms")])


async def test_each_email_gets_the_links_of_its_own_contact_and_sms_none(sealer):
    from savin.domain.consent import read_unsubscribe_token
    from savin.rendering import LinkMaker

    class LinkRecordingRenderer:
        def __init__(self):
            self.links = []

        def render(self, event, channel, language, timezone, links=None):
            self.links.append((channel, links))
            return f"{event['event_type']}/{channel}/{language}"

    renderer = LinkRecordingRenderer()
    d = Dispatcher(renderer, [RecordingNotifier(sealer, "sms"), RecordingNotifier(sealer, "email")],
                   links=LinkMaker("https://notify.example.gov", b"k" * 32, clock=lambda: NOW))
    jobs = jobs_for(sealer, "RELEASED")
    await d.send_batch(jobs)
    assert {links for channel, links in renderer.links if channel == "sms"} == {None}
    emails = [j for j in jobs if j.channel.value == "email"]
    tokens = {links.unsubscribe.rsplit("/", 1)[1] for channel, links in renderer.links if channel == "email"}
    assert {read_unsubscribe_token(b"k" * 32, t, NOW) for t in tokens} == {
        (j.registration_id, "email", j.contact_index) for j in emails}


def test_the_worker_builds_one_notifier_per_configured_provider():
    from savin.bootstrap import build_dispatcher, build_links
    from savin.settings import Settings

    settings = Settings(_env_file=None, data_key=new_key())
    d = build_dispatcher(settings)
    assert sorted((n.channel, n.provider) for n in d.notifiers) == [("email", "smtp"), ("sms", "twilio"),
                                                                          ("voice", "twilio-voice")]
    # Its emails link to the portal, signed with the key the portal checks them with (Portal.link_key).
    from savin.domain.consent import read_unsubscribe_token
    from savin.domain.links import derive_key

    links = build_links(settings).for_contact("R-1", "email", 0)
    base = f"http://{settings.portal_host}:{settings.portal_port}"
    assert links.manage == f"{base}/manage" and links.unsubscribe.startswith(f"{base}/unsubscribe/")
    key = derive_key(settings.web_secret.get_secret_value(), "links")
    assert read_unsubscribe_token(key, links.unsubscribe.rsplit("/", 1)[1], dt.datetime.now(dt.timezone.utc)) == (
        "R-1", "email", 0)


def samples(name: str, **labels) -> float:
    found = [s.value for m in metrics.SEND_SECONDS.collect() for s in m.samples
             if s.name == name and s.labels == labels]
    return found[0] if found else 0.0


async def test_every_send_is_timed_by_provider(sealer):
    email = RecordingNotifier(sealer, "email", faults={"alice@example.org": PermanentFailure("smtp: 550", "550")})
    before = samples("savin_send_seconds_count", provider="fake-email")
    outcomes = await Dispatcher(FakeRenderer(), [email]).send_batch(
        [j for j in jobs_for(sealer, "RELEASED") if j.channel.value == "email"])
    assert len(outcomes) == 2
    assert samples("savin_send_seconds_count", provider="fake-email") == before + 2


def config_faults(provider: str, code: str) -> float:
    for metric in metrics.PROVIDER_CONFIG_FAULTS.collect():
        for s in metric.samples:
            if s.name.endswith("_total") and s.labels == {"provider": provider, "code": code}:
                return s.value
    return 0.0


async def test_a_configuration_fault_keeps_the_notice_and_marks_the_notifier_until_a_send_succeeds(sealer, caplog):
    refused = ConfigurationFault("fake refused savin's credentials", "20003", fields=("auth_token",))
    sms = RecordingNotifier(sealer, "sms", faults={"+15735550101": refused, "+15735550102": refused})
    d = Dispatcher(FakeRenderer(), [sms, RecordingNotifier(sealer, "email")])
    jobs = [j for j in jobs_for(sealer, "RELEASED", "ESCAPED") if j.channel.value == "sms"]
    before = config_faults("fake-sms", "20003")
    with caplog.at_level("ERROR", logger="savin.notifiers"):
        outcomes = await d.send_batch(jobs)
    assert {(o.status, o.error_code) for o in outcomes} == {(DeliveryStatus.RETRYING, "20003")}
    assert sms.config_fault is refused
    assert config_faults("fake-sms", "20003") == before + len(jobs)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "fake-sms refuses savin's configuration" in errors[0].getMessage()

    sms.faults.clear()
    await d.send_batch(jobs[:1])
    assert sms.config_fault is None


async def test_a_check_records_and_clears_a_configuration_fault(sealer):
    class Checked(RecordingNotifier):
        refuse = True

        async def try_check(self):
            if self.refuse:
                raise ConfigurationFault("fake refused", "535", fields=("password",))

    n = Checked(sealer, "email")
    with pytest.raises(ConfigurationFault):
        await n.check()
    assert n.config_fault is not None and n.config_fault.code == "535"
    n.refuse = False
    await n.check()
    assert n.config_fault is None
