"""Registering on the portal and proving the contacts: ``savin web`` and the
worker as their own processes on a real broker, pages in Debian's chromium
(every page in English and Spanish, phone and desktop width, axe-core clean
with and without an error), codes read from the fake Twilio and links from
the SMTP server, and a custody event that then reaches the proved contacts.
The abuse tests drive the pages over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import zoneinfo

import httpx
import pytest
from support import event, eventually, registration
from test_portal import WIDTHS, check_page, publish_statuses, screenshots_dir

from savin.domain.vocabulary import EVENT_TYPES
from savin.web.portal.i18n import STRINGS
from savin.web.portal.register import (
    GROUPS,
    QUESTIONS,
    TIMEZONES,
    build,
    event_types_of,
    new_registration_id,
    normalise_phone,
)

e2e = pytest.mark.e2e

OFFENDER = {
    "offender_id": "MO-5520301", "offender_name": "Dario Velasco Reyes", "status": "in_custody",
    "location": "Potosi Correctional Center", "release_date": None, "next_hearing": None,
    "last_event_type": "TRANSFERRED", "last_event_at": "2026-11-02T15:00:00Z", "updated_at": "2026-11-02T15:00:01Z",
}
OFFENDER_ID = OFFENDER["offender_id"]
#: Generous limits per client, so the tests meet only the per-number limit they are about.
MANY = {"SAVIN_CLIENT_CODE_SENDS": "1000"}
CODE = re.compile(r"\b([0-9]{6})\b")


# ---- rules, without Kafka --------------------------------------------------------------------------


@pytest.mark.parametrize("typed, number", [
    ("573 555 0123", "+15735550123"), ("(573) 555-0123", "+15735550123"), ("573.555.0123", "+15735550123"),
    ("1 573 555 0123", "+15735550123"), ("+1 573 555 0123", "+15735550123"), ("+44 7700 900123", "+447700900123"),
    ("5550123", "5550123"), ("call me", "callme"),
])
def test_phone_numbers_are_normalised_to_e164(typed, number):
    assert normalise_phone(typed) == number


def test_registration_ids_are_short_readable_and_random():
    ids = {new_registration_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"R-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{10}", i) for i in ids)


def test_notice_groups_come_from_the_vocabulary():
    assert GROUPS == ("custody", "supervision", "parole_board", "clemency", "restitution")
    assert event_types_of(None) is None and event_types_of(list(GROUPS)) is None
    assert set(event_types_of(["custody"])) == {n for n, k in EVENT_TYPES.items() if k.group == "custody"}
    assert "EVENT_RETRACTED" not in event_types_of(["custody", "restitution"])  # sent to everyone anyway


def test_answers_are_checked_by_the_registration_rules_and_errors_name_the_field():
    base = {"offender_id": OFFENDER_ID, "phone": "+15735550123", "email": None}
    assert build(base)[1] == set()
    assert build({**base, "phone": "5550123"})[1] == {"phone"}
    assert build({**base, "email": "not-an-address"})[1] == {"email"}
    assert build({**base, "phone": None})[1] == {"contacts"}
    assert build({**base, "name": "x" * 201})[1] == {"name"}
    assert build({**base, "pin": "12a4"})[1] == {"pin"}
    assert build({**base, "timezone": "Mars/Olympus"})[1] == {"timezone"}
    reg, _ = build({**base, "pin": "4321", "notices": ["custody"], "language": "es"}, "R-1")
    assert reg.registration_id == "R-1" and reg.language == "es" and reg.quiet_hours is None
    assert reg.contacts[0].verified is False


def test_every_choice_has_words_in_both_languages():
    for table in STRINGS.values():
        for g in GROUPS:
            assert table[f"reg_group_{g}"] and table[f"reg_group_{g}_hint"]
        for zone in TIMEZONES:
            zoneinfo.ZoneInfo(zone)
            assert table[f"reg_tz_{zone}"]
    assert set(STRINGS["en"]) == set(STRINGS["es"])


# ---- in the browser --------------------------------------------------------------------------------


def texts_to(stack, number: str) -> list[str]:
    return [m.body for m in stack.twilio.messages if m.to == number]


def mails_to(stack, address: str) -> list[str]:
    return [m.message.get_body(("plain",)).get_content() for m in stack.smtp.messages if address in m.rcpt_tos]


async def latest_code(stack, number: str, count: int) -> str:
    await eventually(lambda: len(texts_to(stack, number)) >= count, 30, f"code text {count}")
    return CODE.search(texts_to(stack, number)[count - 1]).group(1)


async def error_shown(page, field: str, message: str) -> None:
    summary = page.locator(".error-summary")
    assert await summary.locator(f"a[href='#{field}']").inner_text() == message
    assert await page.locator(f"#{field}-error").count() == 1
    assert (await page.title()).startswith("Error: ")


async def register_in_browser(stack, web, page, axe_script, shots, lang: str, tag: str, *, phone: str, email: str,
                              groups: tuple[str, ...], timezone: str) -> str:
    """Every page of the flow, each also with an error showing; the registration id."""
    t = STRINGS[lang]

    async def shot(name: str) -> None:
        await check_page(page, axe_script, shots, f"register-{name}-{tag}")

    async def proceed() -> None:
        await page.get_by_role("button", name=t["reg_continue"]).click()

    async def back_link_is(href: str) -> None:
        assert await page.locator("a.back-link").get_attribute("href") == href

    await page.goto(f"{web.url}/offenders/{OFFENDER_ID}?lang={lang}")
    await page.get_by_role("link", name=t["reg_link"]).click()
    assert await page.locator("h1").inner_text() == t["reg_start_title"]
    await back_link_is(f"/offenders/{OFFENDER_ID}")
    await shot("start")
    await page.get_by_role("button", name=t["reg_start_button"]).click()

    # Phone: a number too short to be one; the error never repeats what was typed.
    await page.wait_for_url("**/register/phone")
    await back_link_is(f"/register/{OFFENDER_ID}")
    await shot("phone")
    await page.locator("#phone").fill("555 01")
    await proceed()
    await error_shown(page, "phone", t["reg_phone_invalid"])
    await shot("phone-error")
    await page.locator("#phone").fill(phone[2:5] + " " + phone[5:8] + "-" + phone[8:])  # typed as a US number
    await proceed()

    await page.wait_for_url("**/register/email")
    await back_link_is("/register/phone")
    await shot("email")
    await page.locator("#email").fill("victim.example.org")
    await proceed()
    await error_shown(page, "email", t["reg_email_invalid"])
    assert "victim.example.org" not in await page.locator(".error-summary").inner_text()
    await shot("email-error")
    await page.locator("#email").fill(email)
    await proceed()

    # Language: the page's language is chosen already; a forged value gets an error.
    await page.wait_for_url("**/register/language")
    assert await page.locator(f"input[name=language][value={lang}]").is_checked()
    await shot("language")
    await page.evaluate("document.querySelector('input[name=language]:checked').value = 'xx'")
    await proceed()
    await error_shown(page, "language", t["reg_language_invalid"])
    await shot("language-error")
    await page.get_by_label(STRINGS[lang]["language_name"], exact=True).check()
    await proceed()

    # Notices: all are ticked at first; none is an error.
    await page.wait_for_url("**/register/notices")
    boxes = page.locator("input[name=notices]")
    assert await boxes.count() == len(GROUPS)
    for i in range(len(GROUPS)):
        assert await boxes.nth(i).is_checked()
    await shot("notices")
    for i in range(len(GROUPS)):
        await boxes.nth(i).uncheck()
    await proceed()
    await error_shown(page, "notices", t["reg_notices_none"])
    await shot("notices-error")
    for g in groups:
        await page.get_by_label(t[f"reg_group_{g}"], exact=True).check()
    await proceed()

    await page.wait_for_url("**/register/timezone")
    assert await page.locator("#timezone").input_value() == "America/Chicago"
    await shot("timezone")
    await page.evaluate("document.querySelector('#timezone option:checked').value = 'Mars/Olympus'")
    await proceed()
    await error_shown(page, "timezone", t["reg_timezone_invalid"])
    await shot("timezone-error")
    await page.locator("#timezone").select_option(timezone)
    await proceed()

    await page.wait_for_url("**/register/name")
    await shot("name")
    await page.locator("#name").fill("N" * 201)
    await proceed()
    await error_shown(page, "name", t["reg_name_too_long"])
    await shot("name-error")
    await page.locator("#name").fill("Ana Prueba")
    await proceed()

    await page.wait_for_url("**/register/pin")
    await shot("pin")
    await page.locator("#pin").fill("4821")
    await page.locator("#pin_again").fill("4812")
    await proceed()
    await error_shown(page, "pin_again", t["reg_pin_mismatch"])
    await shot("pin-error")
    await page.locator("#pin").fill("4821")
    await page.locator("#pin_again").fill("4821")
    await proceed()

    # Check your answers, and one change that comes back to it.
    await page.wait_for_url("**/register/check")
    answers = await page.locator(".summary-list").inner_text()
    for shown in (phone, email, OFFENDER["offender_name"], STRINGS[lang]["language_name"], t[f"reg_tz_{timezone}"],
                  "Ana Prueba", t["reg_pin_hidden"],
                  *((t["reg_notices_all"],) if groups == GROUPS else (t[f"reg_group_{g}"] for g in groups))):
        assert shown in answers
    assert "4821" not in await page.content()
    await shot("check")
    await page.locator("a[href='/register/name?change=1']").click()
    await back_link_is("/register/check")
    await page.locator("#name").fill("")
    await proceed()
    await page.wait_for_url("**/register/check")
    assert "Ana Prueba" not in await page.locator(".summary-list").inner_text()
    await page.get_by_role("button", name=t["reg_submit"]).click()

    await page.wait_for_url("**/register/done")
    rid = await page.locator("#registration-id").inner_text()
    assert re.fullmatch(r"R-[0-9A-Z]{10}", rid)
    assert rid not in page.url and "@" not in page.url
    await shot("done")

    # The phone: a wrong code, a new code, the right one.
    code = await latest_code(stack, phone, 1)
    await page.get_by_role("link", name=t["reg_done_phone_button"]).click()
    await page.wait_for_url("**/verify/phone")
    await shot("verify-phone")
    await page.locator("#code").fill("0" * 6 if code != "000000" else "1" * 6)
    await page.get_by_role("button", name=t["reg_code_button"]).click()
    await error_shown(page, "code", t["reg_code_wrong"])
    await shot("verify-phone-error")
    await page.get_by_role("button", name=t["reg_code_new_button"]).click()
    assert t["reg_code_sent"] in await page.locator(".notification").inner_text()
    await shot("verify-phone-new-code")
    code = await latest_code(stack, phone, 2)
    await page.locator("#code").fill(code)
    await page.get_by_role("button", name=t["reg_code_button"]).click()
    await page.wait_for_url("**/verify/phone/done")
    assert await page.locator("h1").inner_text() == t["reg_code_done_title"]
    await shot("verify-phone-done")

    # The email: its link shows a button; pressing it confirms; a second press says the same.
    await eventually(lambda: mails_to(stack, email), 30, "the confirmation email")
    (link,) = re.findall(r"http://\S+/verify/email/\S+", mails_to(stack, email)[0])
    assert link.startswith(web.url)
    await page.goto(link)
    assert await page.locator("h1").inner_text() == t["reg_link_title"]
    await shot("verify-email")
    await page.get_by_role("button", name=t["reg_link_button"]).click()
    assert await page.locator("h1").inner_text() == t["reg_link_done_title"]
    await shot("verify-email-done")
    await page.goto(link)
    await page.get_by_role("button", name=t["reg_link_button"]).click()
    assert await page.locator("h1").inner_text() == t["reg_link_done_title"]
    await page.goto(link[:-3] + "AAA")
    await page.get_by_role("button", name=t["reg_link_button"]).click()
    assert await page.locator("h1").inner_text() == t["reg_link_expired_title"]
    await shot("verify-email-expired")
    return rid


@e2e
async def test_register_in_english_and_spanish_prove_both_contacts_and_get_notices(stack, browser_page, axe_script,
                                                                                   tmp_path):
    await publish_statuses(stack, OFFENDER)
    stack.start_worker()
    web = stack.start_web(**MANY)
    shots = screenshots_dir(tmp_path)
    runs = {  # (lang, width) -> phone, email, groups chosen, time zone
        ("en", "phone"): ("+13145550101", "ana.en.phone@example.org", ("custody",), "America/Chicago"),
        ("en", "desktop"): ("+13145550102", "ana.en.desktop@example.org", GROUPS, "America/Denver"),
        ("es", "phone"): ("+13145550103", "ana.es.phone@example.org", ("custody", "parole_board"), "America/Chicago"),
        ("es", "desktop"): ("+13145550104", "ana.es.desktop@example.org", ("restitution",), "America/New_York"),
    }
    ids = {}
    for (lang, width_name), (phone, email, groups, zone) in runs.items():
        page = await browser_page(*WIDTHS[width_name])
        ids[lang, width_name] = await register_in_browser(stack, web, page, axe_script, shots, lang,
                                                          f"{lang}-{width_name}", phone=phone, email=email,
                                                          groups=groups, timezone=zone)
        # Without the cookies: the answers and the registration are gone from this browser.
        fresh = await browser_page(*WIDTHS[width_name])
        await fresh.goto(f"{web.url}/register/phone?lang={lang}")
        assert await fresh.locator("h1").inner_text() == STRINGS[lang]["reg_expired_title"]
        await check_page(fresh, axe_script, shots, f"register-expired-{lang}-{width_name}")
        await fresh.goto(f"{web.url}/verify/phone")
        assert await fresh.locator("h1").inner_text() == STRINGS[lang]["reg_unknown_title"]
        await check_page(fresh, axe_script, shots, f"register-verify-unknown-{lang}-{width_name}")
    assert len(set(ids.values())) == 4
    log = web.tail(200_000)
    for phone, email, *_ in runs.values():
        assert phone not in log and phone[2:] not in log and email not in log

    # A release reaches every proved contact that wants custody notices, in its own language.
    await stack.wait_caught_up(stack.topics.registrations)
    report = await stack.publish_events([json.dumps(event("RELEASED", OFFENDER_ID))])
    assert report.errors == []
    for (lang, _), (phone, email, groups, zone) in runs.items():
        if "custody" not in groups:
            continue
        await eventually(lambda p=phone: len(texts_to(stack, p)) >= 3, 60, f"the release text to {lang}")
        await eventually(lambda e=email: len(mails_to(stack, e)) >= 2, 60, f"the release email to {lang}")
        notice = texts_to(stack, phone)[2]
        if lang == "en":
            assert "was released" in notice and ("1:05 PM" if zone == "America/Denver" else "2:05 PM") in notice
        else:
            assert "salió en libertad" in notice
    await stack.wait_caught_up(stack.topics.notices_urgent)
    phone, email, *_ = runs["es", "desktop"]  # asked for restitution notices only
    assert len(texts_to(stack, phone)) == 2 and len(mails_to(stack, email)) == 1

    # The English registrant signs in with the id and PIN, changes the language to Spanish,
    # and the next notice follows it on both contacts.
    t = STRINGS["en"]
    phone, email, *_ = runs["en", "phone"]
    page = await browser_page(*WIDTHS["phone"])
    await page.goto(f"{web.url}/manage?lang=en")
    await page.get_by_label(t["manage_id_label"]).fill(ids["en", "phone"])
    await page.get_by_label(t["manage_pin_label"], exact=True).fill("4821")
    await page.get_by_role("button", name=t["manage_sign_in_button"], exact=True).click()
    await page.wait_for_url("**/manage/registration")
    await page.locator(".summary-list__row", has=page.locator("dt", has_text=t["manage_language"])).get_by_role(
        "link", name=f"{t['manage_change']} {t['manage_language']}").click()
    await page.get_by_role("radio", name=STRINGS["es"]["language_name"]).check()
    await page.get_by_role("button", name=t["manage_save"], exact=True).click()
    await page.wait_for_url("**/manage/registration?saved=language")
    texts, mails = len(texts_to(stack, phone)), len(mails_to(stack, email))
    await stack.wait_caught_up(stack.topics.registrations)
    assert (await stack.publish_events([json.dumps(event("TRANSFERRED", OFFENDER_ID))])).errors == []
    await eventually(lambda: len(texts_to(stack, phone)) > texts, 60, "the transfer text")
    await eventually(lambda: len(mails_to(stack, email)) > mails, 60, "the transfer email")
    spanish = texts_to(stack, phone)[-1]
    assert "cambió de centro" in spanish, spanish
    assert "Un traslado entre centros no es una liberación" in mails_to(stack, email)[-1]


# ---- abuse, over plain HTTP ---------------------------------------------------------------------------


class Visitor:
    """One browser's cookies; forms are posted with the CSRF token of the page before."""

    def __init__(self, url: str):
        self.http = httpx.AsyncClient(base_url=url, follow_redirects=True, timeout=30)
        self.token = ""

    async def get(self, path: str) -> httpx.Response:
        return self._saw(await self.http.get(path))

    async def post(self, path: str, **fields) -> httpx.Response:
        return self._saw(await self.http.post(path, data={"csrf": self.token, **fields}))

    def _saw(self, r: httpx.Response) -> httpx.Response:
        if found := re.search(r'name="csrf" value="([^"]+)"', r.text):
            self.token = found.group(1)
        return r

    async def register(self, phone: str | None, email: str | None = None) -> httpx.Response:
        await self.get(f"/register/{OFFENDER_ID}?lang=en")
        await self.post(f"/register/{OFFENDER_ID}")
        answers = {"phone": {"phone": phone or ""}, "email": {"email": email or ""}, "language": {"language": "en"},
                   "notices": {"notices": list(GROUPS)}, "timezone": {"timezone": "America/Chicago"},
                   "name": {"name": ""}, "pin": {"pin": "2468", "pin_again": "2468"}}
        for q in QUESTIONS:
            r = await self.post(f"/register/{q.key}", **answers[q.key])
            assert r.status_code == 200, (q.key, r.text)
        await self.get("/register/check")
        return await self.post("/register/check")

    async def close(self) -> None:
        await self.http.aclose()


def registration_id(page: str) -> str:
    return re.search(r'id="registration-id">([^<]+)<', page).group(1)


def main_part(page: str) -> str:
    """The page's main content without what differs per visitor (its token, its registration id)."""
    main = re.search(r"<main.*</main>", page, re.DOTALL).group(0)
    return re.sub(r'value="[^"]+"', 'value=""', re.sub(r"R-[0-9A-Z]{10}", "R-…", main))


@e2e
async def test_twenty_code_requests_for_one_number_send_at_most_three_codes(stack):
    await publish_statuses(stack, OFFENDER)
    web = stack.start_web(**MANY)
    number = "+13145550201"
    visitors = [Visitor(web.url) for _ in range(3)]
    try:
        for v in visitors:  # three registrations of one number: each asks for a code
            assert (await v.register(number)).status_code == 200
        pages = set()
        for i in range(17):
            r = await visitors[i % 3].post("/verify/phone/new")
            assert r.status_code == 200
            pages.add(main_part(r.text))
        assert len(pages) == 1 and STRINGS["en"]["reg_code_sent"] in pages.pop()
    finally:
        for v in visitors:
            await v.close()
    await asyncio.sleep(1)
    assert len(texts_to(stack, number)) == 3


@e2e
async def test_registered_and_unregistered_numbers_get_the_same_pages_in_the_same_time(stack):
    await publish_statuses(stack, OFFENDER)
    tries = 7
    registered = [f"+1314555{300 + i:04d}" for i in range(tries)]
    unregistered = [f"+1314555{400 + i:04d}" for i in range(tries)]
    report = await stack.import_registrations(
        [registration(f"R-OTHER-{i}", "MO-OTHER", sms=n, email=f"other{i}@example.org")
         for i, n in enumerate(registered)])
    assert report.errors == []
    web = stack.start_web(**MANY)
    timings: dict[bool, list[float]] = {True: [], False: []}
    answers: dict[bool, set] = {True: set(), False: set()}
    for i in range(tries):
        for known, number in ((True, registered[i]), (False, unregistered[i])):
            v = Visitor(web.url)
            try:
                started = time.perf_counter()
                r = await v.register(number, email=f"same.{known}.{i}@example.org")
                timings[known].append(time.perf_counter() - started)
                again = await v.post("/verify/phone/new")
                answers[known].add((r.status_code, main_part(r.text), again.status_code, main_part(again.text)))
            finally:
                await v.close()
    assert answers[True] == answers[False] and len(answers[True]) == 1
    fast, slow = sorted((statistics.median(timings[True]), statistics.median(timings[False])))
    assert slow <= 2 * fast + 0.25, timings
    for number in registered + unregistered:  # every number got its code, and its new code
        assert len(texts_to(stack, number)) == 2


@e2e
async def test_five_wrong_codes_kill_the_code(stack):
    await publish_statuses(stack, OFFENDER)
    web = stack.start_web(**MANY)
    number = "+13145550501"
    t = STRINGS["en"]
    v = Visitor(web.url)
    try:
        await v.register(number)
        code = await latest_code(stack, number, 1)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        await v.get("/verify/phone")
        for i in range(5):
            r = await v.post("/verify/phone", code=wrong)
            assert r.status_code == 400
            assert t["reg_code_wrong" if i < 4 else "reg_code_expired"] in r.text
        r = await v.post("/verify/phone", code=code)
        assert r.status_code == 400 and t["reg_code_expired"] in r.text
        assert (await v.get("/verify/phone/done")).url.path == "/verify/phone"  # not proved
        # A new code, typed with a space as people do, proves it.
        await v.post("/verify/phone/new")
        code = await latest_code(stack, number, 2)
        r = await v.post("/verify/phone", code=f"{code[:3]} {code[3:]}")
        assert r.status_code == 200 and r.url.path == "/verify/phone/done"
    finally:
        await v.close()


@e2e
async def test_bad_requests_get_pages_and_never_a_traceback(stack):
    await publish_statuses(stack, OFFENDER)
    web = stack.start_web(**MANY)
    v = Visitor(web.url)
    t = STRINGS["en"]

    def plain(r: httpx.Response, *status: int) -> None:
        assert r.status_code in status, (r.request.url, r.status_code, r.text[:300])
        assert "Traceback" not in r.text and 'File "' not in r.text

    try:
        # No token, a forged token, no form at all: refused, in plain words.
        await v.get(f"/register/{OFFENDER_ID}")
        for path in (f"/register/{OFFENDER_ID}", "/register/phone", "/register/check", "/verify/phone",
                     "/verify/phone/new", "/verify/email/abc.def"):
            plain(await v.http.post(path, data={"csrf": "forged"}), 403)
            plain(await v.http.post(path, content=b'{"csrf": 1}', headers={"content-type": "application/json"}), 403)
        plain(await v.http.post("/register/phone", content=b"--x\r\nbroken",
                                headers={"content-type": "multipart/form-data; boundary=x"}), 400, 403)
        # Offenders that are not there.
        plain(await v.get("/register/MO-0000000"), 404)
        plain(await v.get("/register/" + "X" * 200), 404)
        plain(await v.post("/register/MO-0000000"), 404)
        # Answers that are not answers.
        plain(await v.get("/register/check"), 400)  # no draft yet
        await v.get(f"/register/{OFFENDER_ID}")
        await v.post(f"/register/{OFFENDER_ID}")
        for path, fields in (("/register/phone", {"phone": "9" * 20_000}), ("/register/phone", {"phone": "+١٢٣٤٥٦٧٨"}),
                             ("/register/email", {"email": "a@b"}), ("/register/language", {}),
                             ("/register/notices", {"notices": ["custody", "nonsense"]}),
                             ("/register/timezone", {"timezone": "../../etc"}), ("/register/pin", {"pin": "١٢٣٤"})):
            r = await v.post(path, **fields)
            plain(r, 400)
            assert t["error_summary_title"] in r.text
        # Neither a phone nor an email: the error names the field, whichever was left blank last.
        await v.post("/register/phone", phone="")
        r = await v.post("/register/email", email="")
        plain(r, 400)
        assert re.search(rf'<a href="#email">{re.escape(t["reg_email_needed"])}</a>', r.text)
        await v.post("/register/phone", phone="573 555 0199")
        await v.post("/register/email", email="")
        r = await v.post("/register/phone", phone="", change="1")
        plain(r, 400)
        assert re.search(rf'<a href="#phone">{re.escape(t["reg_phone_needed"])}</a>', r.text)
        # The check page sends unanswered questions back to them.
        r = await v.get("/register/check")
        assert r.url.path == "/register/language"
        # Forged and expired cookies are no cookies.
        v.http.cookies.set("savin_register", "A" * 300)
        plain(await v.get("/register/name"), 400)
        v.http.cookies.set("savin_proving", "not-sealed")
        plain(await v.get("/verify/phone"), 400)
        plain(await v.get("/register/done"), 400)
        # Email links that are no links.
        for token in ("x", "a.b", "A" * 5000):
            page = await v.get(f"/verify/email/{token}")
            plain(page, 200)
            plain(await v.post(f"/verify/email/{token}"), 400)
    finally:
        await v.close()
