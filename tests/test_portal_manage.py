"""Managing a registration on the portal (`savin web` as its own process, on a real
broker): sign in with the registration ID and PIN, the registration with its
contacts masked, one change a page (each a new record by the portal, in
`savin registrations show`), a new phone proved by its code, cancelling; the
lockout after 10 wrong PINs, refusals that look alike whatever their reason,
CSRF, and every page axe-clean in English and Spanish at phone and desktop width."""

from __future__ import annotations

import base64
import hashlib
import html
import http.cookiejar
import json
import os
import re
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from support import event, eventually, registration, savin
from test_portal import WIDTHS, check_page, publish_statuses, screenshots_dir

from savin.domain.clock import utcnow
from savin.ops.reading import read_topic
from savin.schemas import Channel
from savin.schemas.consent import Actor, Attempts, ConsentChange
from savin.schemas.registration import StoredRegistration
from savin.settings import Settings
from savin.topics import producer, registration_record
from savin.web.portal.cookies import CookieBox
from savin.web.portal.i18n import STRINGS
from savin.web.portal.manage import SESSION_AGE

pytestmark = pytest.mark.e2e

OFFENDER = {
    "offender_id": "MO-5500123", "offender_name": "Dale Everett Brandt", "status": "in_custody",
    "location": "Algoa Correctional Center", "release_date": None, "next_hearing": None,
    "last_event_type": "TRANSFERRED", "last_event_at": "2026-11-20T15:25:00Z", "updated_at": "2026-11-20T15:25:01Z",
}
PIN = "739158"
PHONE, NEW_PHONE = "+15735550101", "+15735550177"
MAIL = "alice@example.org"

POSTS = ("/manage", "/manage/language", "/manage/notices", "/manage/quiet-hours", "/manage/timezone",
         "/manage/phone", "/manage/email", "/manage/phone/remove", "/manage/email/remove", "/manage/verify-phone",
         "/manage/verify-phone/new", "/manage/email/new-link", "/manage/cancel", "/manage/sign-out")


class Browserless:
    """A browser without a browser: cookies, the page's CSRF token, no redirects followed."""

    def __init__(self, base: str, as_if_https: bool = False):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        #: Send Secure cookies back over plain http, as a browser behind the https proxy would.
        self.as_if_https = as_if_https

        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), Stay)
        self.csrf = ""

    def request(self, path: str, form: dict | None = None) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        try:
            with self.opener.open(urllib.request.Request(self.base + path, data=data), timeout=30) as r:
                status, headers, body = r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read().decode()
        if self.as_if_https:
            for c in self.jar:
                c.secure = False
        if m := re.search(r'name="csrf" value="([^"]+)"', body):
            self.csrf = m.group(1)
        return status, {k.lower(): v for k, v in headers.items()} | {
            "set-cookie": "\n".join(headers.get_all("Set-Cookie") or [])}, body

    def get(self, path: str):
        return self.request(path)

    def post(self, path: str, form: dict | None = None, csrf: bool = True):
        return self.request(path, {**({"csrf": self.csrf} if csrf else {}), **(form or {})})

    def sign_in(self, rid: str, pin: str) -> tuple[int, str, float]:
        """(status, where it sends or the page, seconds taken) of one sign-in."""
        if not self.csrf:
            self.get("/manage")
        started = time.perf_counter()
        status, headers, body = self.post("/manage", {"registration_id": rid, "pin": pin})
        took = time.perf_counter() - started
        return status, headers.get("location") or body, took


async def imported(stack, *docs: str) -> None:
    report = await stack.import_registrations(list(docs))
    assert report.errors == []


def people(rid: str, **extra) -> str:
    return registration(rid, OFFENDER["offender_id"], **{"sms": PHONE, "email": MAIL, "pin": PIN, **extra})


async def put_registration(stack, stored: StoredRegistration) -> None:
    s = stack.settings()
    key, value, partition = registration_record(stored, s.partitions)
    prod = producer(s.kafka_bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(stack.topics.registrations, value, key=key, partition=partition)
    finally:
        await prod.stop()


async def stop_sms(stack, rid: str) -> None:
    """A STOP texted from the registration's phone, as the inbound webhook records it."""
    prod = producer(stack.bootstrap)
    await prod.start()
    try:
        change = ConsentChange(registration_id=rid, channel=Channel.SMS, opted_out=True, reason="STOP",
                               actor=Actor.INBOUND_SMS, at=utcnow())
        await prod.send_and_wait(stack.topics.consent, change.model_dump_json().encode(), key=rid.encode())
    finally:
        await prod.stop()


async def topic_records(bootstrap: str, topic: str, key: str, model) -> list:
    return [model.model_validate_json(r.value) async for r in read_topic(bootstrap, topic)
            if r.key == key.encode() and r.value is not None]


def codes(stack, to: str) -> list[str]:
    return [m for msg in stack.twilio.messages if msg.to == to for m in re.findall(r"\b(\d{6})\b", msg.body)]


def as_seen(body: str, rid: str) -> str:
    """A page without what differs by the typed id and the browser (its form token)."""
    return re.sub(r'name="csrf" value="[^"]+"', 'name="csrf"', body.replace(f'value="{rid}"', 'value="ID"'))


def main_text(body: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", body.split('id="main-content"', 1)[1]))
    return " ".join(text.split())


def test_every_banner_and_contact_state_has_its_words_in_both_languages():
    from savin.web.portal.manage import BANNERS

    for lang in ("en", "es"):
        t = STRINGS[lang]
        for key in BANNERS:
            assert t[f"manage_saved_{key}"], (lang, key)
        for state in ("confirmed", "pending", "stopped"):
            assert t[f"manage_{state}"], (lang, state)
        for sent in ("sent", "limited", "failed"):
            assert t[f"manage_code_{sent}"], (lang, sent)


# ---- sign-in: no tells, a lockout, CSRF, the session cookie ----------------------------------------


async def test_refusals_look_alike_ten_wrong_pins_lock_and_forms_need_their_token(stack):
    await publish_statuses(stack, OFFENDER)
    await imported(stack, people("R-LOCK"), people("R-TIME"), people("R-SAME"),
                   people("R-GONE", status="cancelled"))
    web = stack.start_web()
    t = STRINGS["en"]
    client = Browserless(web.url)

    # Every refusal is the same page with the same status, whatever its reason.
    pages = {}
    for rid, pin in (("R-NOBODY", PIN), ("R-SAME", "0000"), ("R-GONE", PIN)):
        status, body, _ = client.sign_in(rid, pin)
        assert status == 400, rid
        assert t["manage_refused"] in html.unescape(body)
        pages[rid] = as_seen(body, rid)
    assert pages["R-NOBODY"] == pages["R-SAME"] == pages["R-GONE"]

    # ...and takes as long: the medians of unknown ids and of wrong PINs are within noise.
    unknown, wrong = [], []
    for i in range(7):
        unknown.append(client.sign_in(f"R-NOBODY-{i}", PIN)[2])
        wrong.append(client.sign_in("R-TIME", f"{1000 + i}")[2])
    a, b = statistics.median(unknown), statistics.median(wrong)
    assert abs(a - b) < 0.5 * max(a, b) + 0.03, (unknown, wrong)

    # A right PIN signs in and clears the count of wrong ones.
    status, where, _ = client.sign_in("R-TIME", PIN)
    assert (status, where) == (303, "/manage/registration")
    attempts = await topic_records(stack.bootstrap, stack.topics.attempts, "pin:R-TIME", Attempts)
    assert len(attempts[-2].at) == 7 and attempts[-1].at == () and attempts[-1].locked_until is None

    # Ten wrong PINs lock the registration: then even the right PIN gets the same refusal.
    other = Browserless(web.url)
    for i in range(10):
        assert other.sign_in("R-LOCK", f"{2000 + i}")[0] == 400
    (locked,) = [a for a in await topic_records(stack.bootstrap, stack.topics.attempts, "pin:R-LOCK", Attempts)
                 if a.locked_until is not None][:1]
    assert 29 * 60 < (locked.locked_until - utcnow()).total_seconds() <= 30 * 60
    status, body, _ = other.sign_in("R-LOCK", PIN)
    assert status == 400 and as_seen(body, "R-LOCK") == pages["R-NOBODY"]

    # Missing answers are named, and tell nothing either.
    status, _, body = other.post("/manage", {"registration_id": "", "pin": "12"})
    assert status == 400 and 'href="#registration_id"' in body and 'href="#pin"' in body
    assert t["manage_pin_format"] in body

    # The session cookie: sealed, HttpOnly, SameSite=Strict, only for /manage, 15 minutes; it holds the id only.
    fresh = Browserless(web.url)
    fresh.get("/manage")
    _, headers, _ = fresh.post("/manage", {"registration_id": "R-SAME", "pin": PIN})
    cookie = headers["set-cookie"]
    assert "savin_manage=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/manage" in cookie and f"Max-Age={int(SESSION_AGE.total_seconds())}" in cookie
    assert "Secure" not in cookie  # a plain-http development portal
    sealed = re.search(r"savin_manage=([^;]+)", cookie).group(1)
    secret = Settings.model_fields["web_secret"].default.get_secret_value()
    assert CookieBox(secret, "manage-session", SESSION_AGE).open(sealed, utcnow()) == {"rid": "R-SAME"}
    assert PHONE not in cookie and "R-SAME" not in cookie

    # Every form refuses a post without its token, signed in or not.
    for path in POSTS:
        assert fresh.post(path, {"registration_id": "R-SAME", "pin": PIN}, csrf=False)[0] == 403, path
        assert fresh.post(path, {"csrf": "forged"}, csrf=False)[0] == 403, path
    # A page needs a session: without one it sends the visitor to sign in.
    assert Browserless(web.url).get("/manage/language")[:2][0] == 303

    # No PIN, phone, email or name in the web's log.
    log = web.log_path.read_text()
    for secret_text in (PIN, "5735550101", "alice@", "Test Registrant"):
        assert secret_text not in log


async def test_an_old_scrypt_pin_still_signs_in_and_https_sessions_are_secure(stack):
    from savin.schemas import Registration
    from savin.sealing import Sealer, seal_registration

    s = stack.settings()
    await publish_statuses(stack, OFFENDER)
    sealer = Sealer(s.data_keys, index_key=s.index_key_bytes)
    reg = seal_registration(Registration.model_validate_json(people("R-OLD")), sealer, utcnow())
    salt = os.urandom(16)
    digest = hashlib.scrypt(PIN.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = reg.model_copy(update={"pin_hash": f"scrypt${base64.b64encode(salt).decode()}$"
                                             f"{base64.b64encode(digest).decode()}"})
    await put_registration(stack, old)
    web = stack.start_web(SAVIN_PUBLIC_URL="https://portal.example.gov")
    client = Browserless(web.url, as_if_https=True)
    assert client.sign_in("R-OLD", "1111")[0] == 400
    client.get("/manage")
    _, headers, _ = client.post("/manage", {"registration_id": "R-OLD", "pin": PIN})
    assert headers["location"] == "/manage/registration"
    # Behind https the session cookie is Secure.
    assert "savin_manage=" in headers["set-cookie"] and "Secure" in headers["set-cookie"]
    assert "+1•••••••0101" in client.get("/manage/registration")[2]


# ---- changes: records by the portal, the history, the next notice --------------------------------


async def test_changes_are_records_by_the_portal_and_the_next_notice_follows_the_language(stack):
    await publish_statuses(stack, OFFENDER)
    await imported(stack, people("R-LIVE"))
    stack.start_worker()
    web = stack.start_web()
    client = Browserless(web.url)
    assert client.sign_in("R-LIVE", PIN)[:2] == (303, "/manage/registration")

    status, _, body = client.get("/manage/registration")
    shown = main_text(body)
    assert status == 200 and "+1•••••••0101" in shown and "a•••@example.org" in shown
    assert "Dale Everett Brandt (MO-5500123)" in shown
    for secret_text in ("5735550101", "alice@", "Test Registrant"):
        assert secret_text not in body

    # The language: the next notice is in Spanish.
    assert client.post("/manage/language", {"language": "es"})[1]["location"] == \
        "/manage/registration?saved=language"
    await stack.wait_caught_up(stack.topics.registrations)
    released = event("RELEASED", OFFENDER["offender_id"])
    assert (await stack.publish_events([json.dumps(released)])).errors == []

    def spanish_sms():
        return [m for m in stack.twilio.messages if m.to == PHONE]

    (sms,) = await eventually(spanish_sms, 90, "the release notice by SMS")
    assert "salió en libertad" in sms.body, sms.body

    # Notices, quiet hours, time zone; bad answers are 400 with the field named.
    assert client.post("/manage/notices", {})[0] == 400
    client.post("/manage/notices", {"notices": ["custody", "parole_board"]})
    assert client.post("/manage/quiet-hours", {"start": "9pm", "end": "07:00"})[0] == 400
    client.post("/manage/quiet-hours", {"start": "22:30", "end": "7:00"})
    assert client.post("/manage/timezone", {"timezone": "Mars/Olympus"})[0] == 400
    client.post("/manage/timezone", {"timezone": "America/Denver"})

    # A STOP from the phone, then a new phone: unverified, sent a code, and the slot started again.
    await stop_sms(stack, "R-LIVE")

    async def stopped():
        return "tag--stopped" in client.get("/manage/registration")[2]

    await eventually(stopped, 30, "the STOP to show")
    assert client.post("/manage/phone", {"phone": "12"})[0] == 400
    status, headers, _ = client.post("/manage/phone", {"phone": "(573) 555-0177"})
    assert (status, headers["location"]) == (303, "/manage/verify-phone")
    (code,) = await eventually(lambda: codes(stack, NEW_PHONE), 30, "the code for the new phone")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert client.post("/manage/verify-phone", {"code": wrong})[0] == 400
    assert client.post("/manage/verify-phone", {"code": code})[1]["location"] == \
        "/manage/registration?saved=phone-confirmed"
    overview = main_text(client.get("/manage/registration")[2])
    assert "+1•••••••0177" in overview and "tag--stopped" not in client.get("/manage/registration")[2]

    # The only contact cannot be removed; the second can.
    assert client.post("/manage/email/remove")[1]["location"] == "/manage/registration?saved=email-removed"
    status, _, body = client.post("/manage/phone/remove")
    assert status == 400 and STRINGS["en"]["manage_remove_only"] in html.unescape(body)

    # Cancelling: signed out, told the notices stopped, and the registration no longer signs in.
    assert client.post("/manage/cancel")[1]["location"] == "/manage/cancelled"
    assert client.get("/manage/registration")[1]["location"] == "/manage"
    assert client.sign_in("R-LIVE", PIN)[0] == 400

    # Every change is a record by the portal, in `savin registrations show`.
    env = stack.env()
    view = json.loads(savin(["registrations", "show", "R-LIVE", "--json"], env).stdout)
    records = [h for h in view["history"] if h["kind"] == "registration"]
    portal = [h["change"] for h in records if h["changed_by"] == "portal"]
    assert records[0]["changed_by"] == "operator" and records[0]["change"] == "registered"
    assert portal == ["language en to es", "notices wanted", "quiet hours", "time zone", "sms changed",
                      "sms verified", "email removed", "cancelled"]
    assert view["status"] == "cancelled" and view["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert view["timezone"] == "America/Denver"
    # Each record carries when the registration was made; the cancelling one, when it was cancelled.
    regs = [StoredRegistration.model_validate_json(r.value) async for r in read_topic(stack.bootstrap, stack.topics.registrations)
            if r.key == b"R-LIVE"]
    assert len({r.created_at for r in regs}) == 1 and regs[0].created_at is not None
    assert regs[-1].cancelled_at == regs[-1].updated_at and all(r.cancelled_at is None for r in regs[:-1])
    consent = [(h["changed_by"], h["change"]) for h in view["history"] if h["kind"] == "consent"]
    assert consent == [("inbound_sms", "sms stopped (STOP)"), ("portal", "sms started again (new contact)")]
    shown = savin(["registrations", "show", "R-LIVE"], env)
    assert shown.returncode == 0 and "portal" in shown.stdout and "language en to es" in shown.stdout


# ---- every page, in both languages, at both widths --------------------------------------------


async def test_every_manage_page_is_accessible_in_english_and_spanish_on_a_phone_and_a_desktop(
        stack, browser_page, axe_script, tmp_path):
    await publish_statuses(stack, OFFENDER)
    tours = [(lang, width) for lang in ("en", "es") for width in WIDTHS]
    await imported(stack, *(people(f"R-UI-{lang}-{width}".upper(), sms=f"+1573555{n:04d}")
                            for n, (lang, width) in enumerate(tours)))
    web = stack.start_web(SAVIN_CLIENT_CODE_SENDS="100")
    shots = screenshots_dir(tmp_path)
    for n, (lang, width_name) in enumerate(tours):
        await tour(stack, web, await browser_page(*WIDTHS[width_name]), axe_script, shots, lang, width_name,
                   f"R-UI-{lang}-{width_name}".upper(), f"+1573555{n:04d}", f"+1573555{n + 50:04d}")


async def tour(stack, web, page, axe_script, shots, lang, width_name, rid, phone, new_phone):
    t = STRINGS[lang]
    tag = f"{lang}-{width_name}"

    async def check(name: str, error: str | None = None):
        if error is not None:
            summary = page.locator(".error-summary")
            assert t["error_summary_title"] in await summary.inner_text(), name
            assert error in await summary.inner_text(), name
            assert (await page.title()).startswith(t["error_title_prefix"]), name
            name += "-error"
        assert await page.locator("html").get_attribute("lang") == lang
        await check_page(page, axe_script, shots, f"manage-{name}-{tag}")

    async def press(name: str):
        await page.get_by_role("button", name=name, exact=True).click()

    async def banner(key: str):
        assert t[f"manage_saved_{key}"] in await page.locator(".notification").inner_text()

    async def sign_in(pin: str):
        await page.get_by_label(t["manage_id_label"]).fill(rid)
        await page.get_by_label(t["manage_pin_label"], exact=True).fill(pin)
        await press(t["manage_sign_in_button"])

    await page.goto(f"{web.url}/manage?lang={lang}")
    assert await page.locator("h1").inner_text() == t["manage_sign_in_title"]
    await check("sign-in")
    await press(t["manage_sign_in_button"])
    await check("sign-in", t["manage_id_missing"])
    await sign_in("0000")
    await check("sign-in-refused", t["manage_refused"])
    assert await page.get_by_label(t["manage_pin_label"], exact=True).input_value() == ""
    await sign_in(PIN)
    await page.wait_for_url("**/manage/registration")
    shown = await page.locator(".summary-list").inner_text()
    assert f"{phone[:2]}•••••••{phone[-4:]}" in shown and "a•••@example.org" in shown
    assert phone[2:] not in await page.content() and MAIL not in await page.content()
    assert t["manage_confirmed"] in shown and t["manage_notices_all"] in shown and rid in shown
    await check("registration")

    async def change(label: str):
        await page.locator(".summary-list__row", has=page.locator("dt", has_text=label)).get_by_role(
            "link", name=f"{t['manage_change']} {label}").click()

    # Language: an empty answer, then the other language.
    other = "es" if lang == "en" else "en"
    await change(t["manage_language"])
    await check("language")
    await page.locator("input[name=language]").evaluate_all("els => els.forEach(e => e.checked = false)")
    await press(t["manage_save"])
    await check("language", t["manage_language_missing"])
    await page.get_by_role("radio", name=STRINGS[other]["language_name"]).check()
    await press(t["manage_save"])
    await banner("language")
    await check("registration-saved")

    # Notices: none, then custody and restitution.
    await change(t["manage_notices"])
    await check("notices")
    await page.locator("input[name=notices]").evaluate_all("els => els.forEach(e => e.checked = false)")
    await press(t["manage_save"])
    await check("notices", t["manage_notices_missing"])
    for group in ("custody", "restitution"):
        await page.get_by_label(t[f"reg_group_{group}"], exact=True).check()
    await press(t["manage_save"])
    await banner("notices")
    shown = await page.locator(".summary-list").inner_text()
    assert t["reg_group_custody"] in shown and t["reg_group_restitution"] in shown
    assert t["reg_group_supervision"] not in shown

    # Quiet hours: a time that is not one, then another span.
    await change(t["manage_quiet"])
    await check("quiet-hours")
    await page.get_by_label(t["manage_quiet_start"], exact=True).fill("25:00")
    await press(t["manage_save"])
    await check("quiet-hours", t["manage_quiet_start_invalid"])
    await page.get_by_label(t["manage_quiet_start"], exact=True).fill("22:00")
    await page.get_by_label(t["manage_quiet_end"], exact=True).fill("6:30")
    await press(t["manage_save"])
    await banner("quiet-hours")
    assert "22:00" in await page.locator(".summary-list").inner_text()

    # Time zone: one not offered (a forged form), then Eastern.
    await change(t["manage_timezone"])
    await check("timezone")
    await page.locator("#timezone").evaluate("s => { s.add(new Option('x', 'Mars/Olympus')); s.value = s.options["
                                             "s.options.length - 1].value; }")
    await press(t["manage_save"])
    await check("timezone", t["manage_timezone_missing"])
    await page.locator("#timezone").select_option("America/New_York")
    await press(t["manage_save"])
    await banner("timezone")
    assert t["reg_tz_America/New_York"] in await page.locator(".summary-list").inner_text()

    # A new phone: refused when it is not one, then proved with the code texted to it.
    await change(t["manage_phone"])
    await check("phone")
    await page.get_by_label(t["manage_phone_title"]).fill("555")
    await press(t["manage_save"])
    await check("phone", t["manage_phone_invalid"])
    await page.get_by_label(t["manage_phone_title"]).fill(new_phone)
    await press(t["manage_save"])
    await page.wait_for_url("**/manage/verify-phone")
    await check("verify-phone")
    (code,) = await eventually(lambda: codes(stack, new_phone), 30, "the code for the new phone")
    await page.get_by_label(t["manage_code_title"]).fill(f"{(int(code) + 1) % 1_000_000:06d}")
    await press(t["manage_code_button"])
    await check("verify-phone", t["manage_code_wrong"])
    await page.get_by_label(t["manage_code_title"]).fill(code)
    await press(t["manage_code_button"])
    await banner("phone-confirmed")
    assert f"{new_phone[:2]}•••••••{new_phone[-4:]}" in await page.locator(".summary-list").inner_text()

    # A new email address: refused when it is not one, then sent a link; a new link on request.
    await change(t["manage_email"])
    await check("email")
    await page.get_by_label(t["manage_email_title"]).fill("not an address")
    await press(t["manage_save"])
    await check("email", t["manage_email_invalid"])
    new_mail = f"{rid.lower()}@example.net"
    await page.get_by_label(t["manage_email_title"]).fill(new_mail)
    await press(t["manage_save"])
    await banner("email")
    assert t["manage_pending"] in await page.locator(".summary-list").inner_text()
    await check("registration-pending")
    await press(t["manage_new_link"])
    await banner("link")
    await eventually(lambda: sum(new_mail in m.rcpt_tos for m in stack.smtp.messages) >= 2, 30,
                     "two links to the new address")

    # Removing: the email address can go; then the phone, the only contact left, cannot.
    await page.locator(".summary-list__row", has=page.locator("dt", has_text=t["manage_email"])).get_by_role(
        "link", name=f"{t['manage_remove']} {t['manage_email']}").click()
    await check("remove-email")
    await press(t["manage_remove_email_button"])
    await banner("email-removed")
    await page.goto(f"{web.url}/manage/phone/remove")
    await check("remove-phone")
    await press(t["manage_remove_phone_button"])
    await check("remove-phone", t["manage_remove_only"])

    # Signing out, and in again.
    await page.goto(f"{web.url}/manage/registration")
    await press(t["manage_sign_out"])
    await page.wait_for_url("**/manage/signed-out")
    await check("signed-out")
    await page.goto(f"{web.url}/manage/registration")
    await page.wait_for_url("**/manage")
    await sign_in(PIN)
    await page.wait_for_url("**/manage/registration")

    # Cancelling: a confirmation, then the notices have stopped and the registrant is signed out.
    await page.get_by_role("link", name=t["manage_stop_link"]).click()
    await check("cancel")
    assert OFFENDER["offender_name"] in await page.locator("main").inner_text()
    await press(t["manage_cancel_button"])
    await page.wait_for_url("**/manage/cancelled")
    assert await page.locator("h1").inner_text() == t["manage_cancelled_title"]
    await check("cancelled")
    await page.goto(f"{web.url}/manage/registration")
    await page.wait_for_url("**/manage")
