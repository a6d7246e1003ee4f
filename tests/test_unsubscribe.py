"""Email opt-out end to end: every notice email carries a signed one-click
unsubscribe link (RFC 8058) to the web process; a POST to it stops email to
that registration, and only email, recorded on the consent topic; opened in a
browser, the link shows a page with one button, in the registration's
language, axe-clean on a phone and on a desktop. Worker and web run as their
own processes on the real broker."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse

import pytest
from support import event, eventually, phone, registration
from test_portal import WIDTHS, check_page, fetch, screenshots_dir

from savin.ops.reading import read_topic
from savin.schemas.consent import ConsentChange
from savin.schemas.registration import Actor
from savin.web.portal.i18n import STRINGS

pytestmark = pytest.mark.e2e

EN_MAIL, ES_MAIL = "quill.en@example.org", "zarza.es@example.org"


def mail_to(stack, address: str) -> list:
    return [m for m in stack.smtp.messages if address in m.rcpt_tos]


def sms_to(stack, number: str) -> list[str]:
    return [m.body for m in stack.twilio.messages if m.to == number]


async def consent_changes(stack, registration_id: str) -> list[ConsentChange]:
    return [c async for r in read_topic(stack.bootstrap, stack.topics.consent)
            if (c := ConsentChange.model_validate_json(r.value)).registration_id == registration_id]


def unsubscribe_link(mail) -> str:
    """The List-Unsubscribe URL, checked against the footer's link in both parts."""
    header = mail.message["List-Unsubscribe"]
    assert re.fullmatch(r"<[^<>\s]+>", header), header
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header[1:-1]
    assert url in mail.message.get_body(("plain",)).get_content()
    assert f'href="{url}"' in mail.message.get_body(("html",)).get_content()
    return url


async def test_one_click_unsubscribe_stops_email_only_and_the_page_works_in_a_browser(
        stack, browser_page, axe_script, tmp_path):
    web = stack.start_web()
    stack.start_worker()
    shots = screenshots_dir(tmp_path)
    en_phone, es_phone = phone(301), phone(302)
    await stack.import_registrations([
        registration("R-UN-EN", "O-UN", sms=en_phone, email=EN_MAIL),
        registration("R-UN-ES", "O-UN", sms=es_phone, email=ES_MAIL, language="es"),
    ])
    await stack.publish_events([json.dumps(event("RELEASED", "O-UN"))])
    assert await asyncio.to_thread(stack.smtp.wait_for, 2, 60)
    en_link, es_link = unsubscribe_link(mail_to(stack, EN_MAIL)[0]), unsubscribe_link(mail_to(stack, ES_MAIL)[0])
    assert en_link.startswith(f"{web.url}/unsubscribe/") and es_link != en_link
    for link in (en_link, es_link):  # ids only in the link, never the address
        assert "@" not in urllib.parse.unquote(link) and "example.org" not in link
    assert f"{web.url}/manage" in mail_to(stack, EN_MAIL)[0].message.get_body(("plain",)).get_content()

    # A mail client's one-click unsubscribe: a POST of List-Unsubscribe=One-Click, no form token.
    status, headers, body = await asyncio.to_thread(fetch, en_link, b"List-Unsubscribe=One-Click")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert STRINGS["en"]["reply_unsubscribed_title"] in body
    (change,) = await consent_changes(stack, "R-UN-EN")
    assert (change.channel.value, change.contact_index, change.opted_out) == ("email", 0, True)
    assert (change.reason, change.actor) == ("unsubscribe", Actor.EMAIL_LINK)

    # The next notice: no email to that registration; its SMS and the other registration's email still go.
    await stack.publish_events([json.dumps(event("ESCAPED", "O-UN"))])
    await eventually(lambda: len(mail_to(stack, ES_MAIL)) == 2, 60, "the second email to R-UN-ES")
    await eventually(lambda: len(sms_to(stack, en_phone)) == 2, 60, "the second SMS to R-UN-EN")
    await stack.wait_caught_up(stack.topics.notices_urgent)
    await asyncio.sleep(1)
    assert len(mail_to(stack, EN_MAIL)) == 1

    # In a browser: the page in the registration's language, a button, then the confirmation.
    for lang, link in (("en", en_link), ("es", es_link)):
        t = STRINGS[lang]
        for width_name, (width, height) in WIDTHS.items():
            page = await browser_page(width, height)
            await page.goto(link)
            assert await page.locator("html").get_attribute("lang") == lang
            assert await page.locator("h1").inner_text() == t["reply_unsubscribe_title"]
            assert await page.get_by_role("link", name=t["reply_manage_link"]).get_attribute("href") == "/manage"
            await check_page(page, axe_script, shots, f"unsubscribe-{lang}-{width_name}")
            if lang == "es" and width_name == "phone":
                assert await consent_changes(stack, "R-UN-ES") == []  # opening the link changes nothing
            await page.get_by_role("button", name=t["reply_unsubscribe_button"]).click()
            await page.wait_for_load_state()
            assert await page.locator("h1").inner_text() == t["reply_unsubscribed_title"]
            await check_page(page, axe_script, shots, f"unsubscribed-{lang}-{width_name}")
    assert [(c.channel.value, c.actor) for c in await consent_changes(stack, "R-UN-ES")] == [
        ("email", Actor.EMAIL_LINK)] * 2

    # A link that is forged, cut short or expired: a page saying so, pointing to /manage; nothing recorded.
    recorded = len(await consent_changes(stack, "R-UN-EN"))
    expired = _expired_link(stack, web.url)
    for bad in (en_link[:-3], f"{web.url}/unsubscribe/not-a-token", es_link.replace("unsubscribe/", "unsubscribe/x"),
                expired):
        for data in (None, b"List-Unsubscribe=One-Click"):
            status, _, body = await asyncio.to_thread(fetch, bad, data)
            assert status == 400 and STRINGS["en"]["reply_link_expired_title"] in body and 'href="/manage"' in body
    for lang in ("en", "es"):
        page = await browser_page(*WIDTHS["phone"])
        await page.goto(f"{en_link[:-3]}?lang={lang}")
        assert await page.locator("h1").inner_text() == STRINGS[lang]["reply_link_expired_title"]
        await check_page(page, axe_script, shots, f"unsubscribe-expired-{lang}-phone")
    assert len(await consent_changes(stack, "R-UN-EN")) == recorded == 3  # one click, then the button twice

    # No address in the web's log.
    log = web.tail(10**7)
    assert EN_MAIL not in log and ES_MAIL not in log and "R-UN-EN" in log


def _expired_link(stack, base: str) -> str:
    """A link signed as the worker signs them, that ran out a minute ago."""
    import datetime as dt

    from savin.domain.links import derive_key
    from savin.rendering import LinkMaker

    key = derive_key(stack.settings().web_secret.get_secret_value(), "links")
    return LinkMaker(base, key, ttl=dt.timedelta(minutes=-1)).for_contact("R-UN-EN", "email", 0).unsubscribe
