"""TwilioSMS through the official twilio SDK against the fake Twilio (a real
HTTP server validating every request against Twilio's spec): sids, status
callback URLs, Twilio's error codes as savin's failures, the account check,
status callbacks (signature, replay, statuses), and privacy."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import uuid
from dataclasses import dataclass

import pytest
from support import closing
from twilio.base.exceptions import TwilioRestException

from savin.dev.broker import free_port
from savin.dev.testing.fake_twilio import FakeTwilio
from savin.notifiers.base import ConfigurationFault, Outbound, PermanentFailure, RateLimited, TemporaryFailure
from savin.notifiers.twilio_sms import TWILIO_STATUSES, StatusCallbacks, TwilioSMS, classify
from savin.schemas import DeliveryStatus
from savin.sealing import Sealer

SID, TOKEN = "AC" + "cd" * 16, "notifier-token"
FROM = "+15005550006"
NUMBER = "+15735550177"
BODY = "MO Victim Notification: Jonah Test Doe (MO-4711) was released today."
CALLBACK = "http://127.0.0.1:6066/callbacks/twilio/status"


@dataclass(frozen=True)
class RenderedSMS:
    text: str


def outbound(sealer: Sealer, address: str = NUMBER, text: str = BODY) -> Outbound:
    notice = str(uuid.uuid4())
    return Outbound(notice, "R-1", sealer.seal(address, purpose="contact"), RenderedSMS(text),
                    {"notice_id": notice, "registration_id": "R-1"})


@pytest.fixture
async def fake():
    f = await FakeTwilio(SID, TOKEN).start()
    f.callbacks_enabled = False
    try:
        yield f
    finally:
        await f.stop()


def notifier(sealer: Sealer, base_url: str, **kwargs) -> TwilioSMS:
    options = {"from_number": FROM, "status_callback": CALLBACK, "timeout": 2.0, **kwargs}
    return TwilioSMS(sealer, SID, TOKEN, base_url=base_url, **options)


@pytest.fixture
async def sms(fake, sealer):
    async with closing(notifier(sealer, fake.base_url)) as n:
        await n.start()
        yield n


async def test_an_sms_goes_out_and_returns_twilios_sid(sms, fake, sealer):
    message = outbound(sealer)
    receipt = await sms.send(message)
    (m,) = fake.messages
    assert receipt.provider == "twilio" and receipt.provider_ref == m.sid and m.sid.startswith("SM")
    assert (m.to, m.body, m.from_, m.messaging_service_sid) == (NUMBER, BODY, FROM, None)
    url = urllib.parse.urlsplit(m.status_callback)
    assert urllib.parse.urlunsplit(url._replace(query="")) == CALLBACK
    assert dict(urllib.parse.parse_qsl(url.query)) == {"notice_id": message.notice_id, "registration_id": "R-1"}
    assert fake.rejected == []


async def test_a_callback_url_with_its_own_query_keeps_it(fake, sealer):
    async with closing(notifier(sealer, fake.base_url, status_callback=CALLBACK + "?tenant=mo")) as n:
        message = outbound(sealer)
        await n.send(message)
    (m,) = fake.messages
    assert m.status_callback == f"{CALLBACK}?tenant=mo&notice_id={message.notice_id}&registration_id=R-1"


async def test_without_a_status_callback_none_is_sent(fake, sealer):
    async with closing(notifier(sealer, fake.base_url, status_callback=None)) as n:
        await n.send(outbound(sealer))
    assert fake.messages[0].status_callback is None and fake.rejected == []


async def test_a_messaging_service_sends_instead_of_a_number(fake, sealer):
    service = "MG" + "1" * 32
    async with closing(notifier(sealer, fake.base_url, messaging_service_sid=service)) as n:
        await n.send(outbound(sealer))
    (m,) = fake.messages
    assert (m.from_, m.messaging_service_sid) == (None, service)


def test_a_sender_is_required(sealer):
    with pytest.raises(ValueError, match="From"):
        TwilioSMS(sealer, SID, TOKEN)


async def test_concurrent_sends_share_one_session(sms, fake, sealer):
    messages = [outbound(sealer, f"+1573555{i:04d}") for i in range(40)]
    receipts = await asyncio.gather(*(sms.send(m) for m in messages))
    assert sorted(r.provider_ref for r in receipts) == sorted(m.sid for m in fake.messages)
    assert len(fake.messages) == 40 and fake.rejected == []


@pytest.mark.parametrize("code", [21211, 21408, 21612, 21614])
async def test_invalid_unreachable_or_landline_numbers_are_permanent(sms, sealer, code):
    number = next(n for n, c in FakeTwilio.FAULT_NUMBERS.items() if c == code)
    message = outbound(sealer, number)
    with pytest.raises(PermanentFailure) as e:
        await sms.send(message)
    assert (e.value.code, e.value.suppress, e.value.temporary) == (str(code), False, False)
    assert message.notice_id in str(e.value) and str(code) in str(e.value)
    assert number not in str(e.value) and BODY not in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__  # Twilio's text stays behind


async def test_an_opted_out_recipient_is_permanent_and_suppresses(sms, sealer):
    with pytest.raises(PermanentFailure) as e:
        await sms.send(outbound(sealer, "+15005550004"))
    assert (e.value.code, e.value.suppress) == ("21610", True)


@pytest.mark.parametrize("number,code", [("+15005550429", "20429"), ("+15005550500", "20500")])
async def test_rate_limits_and_server_errors_are_temporary(sms, sealer, number, code):
    with pytest.raises(TemporaryFailure) as e:
        await sms.send(outbound(sealer, number))
    assert (e.value.code, e.value.suppress) == (code, False)


@pytest.mark.parametrize("status,code", [(503, "20503"), (429, "20429"), (500, "20500")])
async def test_an_outage_is_temporary_and_sending_resumes_after_it(sms, fake, sealer, status, code):
    fake.outage(30, status=status)
    with pytest.raises(TemporaryFailure) as e:
        await sms.send(outbound(sealer))
    assert e.value.code == code
    fake.end_outage()
    await sms.send(outbound(sealer))
    assert len(fake.messages) == 1


async def test_a_slow_provider_times_out_as_temporary(fake, sealer):
    fake.latency = 1.0
    async with closing(notifier(sealer, fake.base_url, timeout=0.3)) as n:
        with pytest.raises(TemporaryFailure) as e:
            await n.send(outbound(sealer))
    assert e.value.code == "connection"


async def test_a_down_provider_is_temporary(sealer):
    async with closing(notifier(sealer, f"http://127.0.0.1:{free_port()}")) as n:
        with pytest.raises(TemporaryFailure) as e:
            await n.send(outbound(sealer))
    assert e.value.code == "connection"


async def test_wrong_credentials_are_a_configuration_fault_until_a_send_succeeds(fake, sealer):
    async with closing(notifier(sealer, fake.base_url)) as n:
        fake.rotate_auth_token("rotated-token")
        with pytest.raises(ConfigurationFault) as e:
            await n.send(outbound(sealer))
        assert (e.value.code, e.value.temporary, e.value.fields) == ("20003", True, ("account_sid", "auth_token"))
        assert n.config_fault is e.value and fake.messages == []
        fake.rotate_auth_token(TOKEN)
        await n.send(outbound(sealer))
        assert n.config_fault is None and len(fake.messages) == 1


async def test_the_check_fetches_the_account(sms, fake):
    await sms.check()
    assert sms.config_fault is None and fake.rejected == []  # the fetch is valid by Twilio's spec


async def test_the_check_refuses_wrong_credentials_naming_them(fake, sealer):
    async with closing(TwilioSMS(sealer, SID, "not-the-token", from_number=FROM, base_url=fake.base_url)) as n:
        with pytest.raises(ConfigurationFault) as e:
            await n.check()
    assert (e.value.code, e.value.fields) == ("20003", ("account_sid", "auth_token"))
    assert "not-the-token" not in str(e.value) and SID in str(e.value)
    assert [reason for _, reason in fake.rejected] == ["authentication failed"]


async def test_the_check_refuses_a_suspended_account(sms, fake):
    fake.account_status = "suspended"
    with pytest.raises(ConfigurationFault) as e:
        await sms.check()
    assert (e.value.code, e.value.fields) == ("account-suspended", ("account_sid",))
    fake.account_status = "active"
    await sms.check()
    assert sms.config_fault is None


async def test_the_check_of_a_provider_that_is_down_is_temporary(sealer):
    async with closing(notifier(sealer, f"http://127.0.0.1:{free_port()}")) as n:
        with pytest.raises(TemporaryFailure) as e:
            await n.check()
    assert e.value.code == "connection" and n.config_fault is None


async def test_the_notifier_reopens_after_close(fake, sealer):
    n = notifier(sealer, fake.base_url)
    await n.start()
    await n.close()
    await n.send(outbound(sealer))  # starts again on demand
    await n.close()
    assert len(fake.messages) == 1


def rest_error(status: int, code: int | None) -> TwilioRestException:
    return TwilioRestException(status, f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json",
                               msg=f"Unable to create record: The 'To' number {NUMBER} is not valid", code=code)


@pytest.mark.parametrize("status,code,kind,label", [
    (400, 30001, TemporaryFailure, "30001"),
    (400, 30003, TemporaryFailure, "30003"),
    (429, None, RateLimited, "http-429"),
    (429, 20429, RateLimited, "20429"),
    (502, None, TemporaryFailure, "http-502"),
    (503, 12345, TemporaryFailure, "12345"),
    (400, 21211, PermanentFailure, "21211"),
    (400, 21606, PermanentFailure, "21606"),  # another 4xx: this From cannot send to that number
    (404, 20404, PermanentFailure, "20404"),
    (401, 20003, ConfigurationFault, "20003"),
    (401, None, ConfigurationFault, "http-401"),
])
def test_the_error_map(status, code, kind, label):
    failure = classify(rest_error(status, code), "n-7")
    assert type(failure) is kind and failure.code == label and not failure.suppress
    assert "n-7" in str(failure) and NUMBER not in str(failure) and "Accounts" not in str(failure)


def test_connection_errors_are_temporary():
    import aiohttp

    for exc in (aiohttp.ClientPayloadError("cut"), aiohttp.ServerDisconnectedError(), asyncio.TimeoutError(),
                ConnectionResetError()):
        failure = classify(exc, "n-8")
        assert isinstance(failure, TemporaryFailure) and failure.code == "connection"


async def test_no_number_or_body_reaches_any_log(fake, sealer, caplog):
    caplog.set_level(logging.DEBUG)
    async with closing(notifier(sealer, fake.base_url)) as n:
        await n.send(outbound(sealer))
        for number in ("+15005550001", "+15005550004", "+15005550500"):
            with pytest.raises(PermanentFailure if number != "+15005550500" else TemporaryFailure):
                await n.send(outbound(sealer, number))
    assert logging.getLogger("twilio.http_client").level == logging.WARNING
    assert logging.getLogger("twilio.async_http_client").level == logging.WARNING
    assert len(fake.messages) == 1 and len(caplog.records) >= 3  # savin logged the failures
    for record in caplog.records:
        text = record.getMessage()
        for secret in (NUMBER, "+15005550001", "+15005550004", "+15005550500", BODY):
            assert secret not in text, (record.name, text)


# ---- status callbacks ------------------------------------------------------------------------

NOTICE = str(uuid.uuid4())
CALLBACK_URL = f"{CALLBACK}?" + urllib.parse.urlencode({"notice_id": NOTICE, "registration_id": "R-1"})
QUERY = {"notice_id": NOTICE, "registration_id": "R-1"}


def callback_form(status: str = "delivered", **extra) -> dict[str, str]:
    return {"MessageSid": "SM" + "a" * 32, "MessageStatus": status, "AccountSid": SID, "To": NUMBER, **extra}


def signed(form: dict[str, str], url: str = CALLBACK_URL, token: str = TOKEN) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(token).compute_signature(url, form)


def test_twilio_statuses_map_to_savins():
    assert TWILIO_STATUSES == {"sent": DeliveryStatus.SENT, "delivered": DeliveryStatus.DELIVERED,
                               "undelivered": DeliveryStatus.UNDELIVERED, "failed": DeliveryStatus.FAILED}


def test_a_signed_callback_becomes_a_delivery_result():
    callbacks = StatusCallbacks(TOKEN, CALLBACK)
    form = callback_form("undelivered", ErrorCode="30003")
    url = callbacks.signed_url("http://10.0.0.5:6066/callbacks/twilio/status?x=1", CALLBACK_URL.split("?")[1])
    assert url == CALLBACK_URL  # checked against the public URL Twilio was given
    verdict = callbacks.read(url, form, QUERY, signed(form))
    r = verdict.result
    assert verdict.outcome == "accepted" and r is not None
    assert (str(r.notice_id), r.registration_id, r.status, r.source, r.provider, r.provider_ref, r.error_code) == (
        NOTICE, "R-1", DeliveryStatus.UNDELIVERED, "callback", "twilio", form["MessageSid"], "30003")
    assert NUMBER not in r.model_dump_json()


def test_forged_replayed_unknown_and_ignored_callbacks():
    callbacks = StatusCallbacks(TOKEN, CALLBACK)
    form = callback_form()
    assert callbacks.read(CALLBACK_URL, form, QUERY, signed(form, token="not-the-token")).outcome == "forged"
    assert callbacks.read(CALLBACK_URL, form, QUERY, "").outcome == "forged"
    assert callbacks.read(CALLBACK_URL, {**form, "MessageStatus": "failed"}, QUERY, signed(form)).outcome == "forged"
    assert callbacks.read(CALLBACK_URL, form, QUERY, signed(form)).outcome == "accepted"
    assert callbacks.read(CALLBACK_URL, form, QUERY, signed(form)).outcome == "replayed"
    queued = callback_form("queued")
    assert callbacks.read(CALLBACK_URL, queued, QUERY, signed(queued)).outcome == "ignored"
    bare = callback_form("sent")
    verdict = callbacks.read(CALLBACK, bare, {}, signed(bare, url=CALLBACK))
    assert (verdict.outcome, verdict.result) == ("unknown-notice", None)
    assert NUMBER not in (verdict.reason or "")
