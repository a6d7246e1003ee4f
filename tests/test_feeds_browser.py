"""The feed watchdog where people see it, in a real browser (Debian's chromium,
headless) with the worker and `savin web` as their own processes on the real
broker: an offender's status page says "data from this source as of" the
source's newest event, in English and Spanish, and that it may be out of date
once the source goes stale; a viewer sees the source stale on /console/feeds
and on GET /api/v1/feeds (validated against the served OpenAPI document).
Every page axe-clean at phone and desktop widths."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from openapi_core import OpenAPI
from support import event, eventually
from test_console_api import Checked
from test_console_browser import PASSWORD, sign_in
from test_feeds import WATCH
from test_portal import WIDTHS, check_page, fetch, screenshots_dir

from savin.dev.testing.console_client import api_client
from savin.domain.clock import utcnow
from savin.ops.operators import issue_token, new_account, write_records
from savin.rendering.filters import format_datetime
from savin.schemas.operators import Role
from savin.web.portal.i18n import STRINGS

pytestmark = pytest.mark.e2e

OFFENDER = "MO-FEED-P1"


async def test_the_status_page_and_the_console_show_how_fresh_a_source_is(stack, browser_page, axe_script,
                                                                         tmp_path):
    shots = screenshots_dir(tmp_path)
    s = stack.settings()
    now = utcnow()
    token, secret = issue_token("vera", Role.VIEWER, now)
    await write_records(s, [new_account("vera", Role.VIEWER, PASSWORD, now, "cli"), token])
    stack.start_worker(SAVIN_STAGES="status", **WATCH)
    web = stack.start_web(**WATCH)
    await stack.publish_events([json.dumps(event("TRANSFERRED", OFFENDER, source="demo"))])

    api = api_client(web.url, secret)
    spec = OpenAPI.from_dict(api.get("/openapi.json").json())
    viewer_api = Checked(web.url, secret, spec)

    def demo(state: str):
        def found():
            rows = {f["source"]: f for f in viewer_api("GET", "/feeds").json()}
            return rows.get("demo") if rows.get("demo", {}).get("state") == state else None
        return found

    ok = await eventually(demo("ok"), 60, "the demo source judged ok")
    await eventually(lambda: fetch(f"{web.url}/offenders/{OFFENDER}")[0] == 200, 30, "the offender's page")

    async def status_page(lang: str, width: str, name: str) -> str:
        page = await browser_page(*WIDTHS[width])
        await page.goto(f"{web.url}/offenders/{OFFENDER}?lang={lang}")
        await check_page(page, axe_script, shots, f"{name}-{lang}-{width}")
        return (await page.locator(".data-as-of").inner_text()).strip()

    # Heartbeats keep the source alive while its page is looked at.
    async def heartbeats():
        while True:
            await stack.publish_events([json.dumps(event("HEARTBEAT", "heartbeat", source="demo"))])
            await asyncio.sleep(1)

    beating = asyncio.create_task(heartbeats())
    try:
        for lang in ("en", "es"):
            t = STRINGS[lang]
            for width in WIDTHS:
                shown = await status_page(lang, width, "offender-fresh")
                assert shown.startswith(t["data_as_of"].split("{")[0]) and t["data_stale"] not in shown
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)

    # The source falls silent past its threshold: the watchdog judges it stale, and the page says since when.
    stale = await eventually(demo("stale"), 60 + 60, "the demo source judged stale")
    as_of = dt.datetime.fromisoformat(stale["last_seen_at"])
    assert as_of > dt.datetime.fromisoformat(ok["last_seen_at"]), "the heartbeats counted"
    for lang in ("en", "es"):
        t = STRINGS[lang]
        expected = t["data_as_of"].format(time=format_datetime(as_of, s.portal_timezone, lang, "long"))
        for width in WIDTHS:
            shown = await status_page(lang, width, "offender-stale")
            assert shown.startswith(expected) and shown.endswith(t["data_stale"])

    # A viewer's console page.
    for width in WIDTHS:
        page = await browser_page(*WIDTHS[width])
        await sign_in(page, web.url, "vera")
        await page.get_by_role("link", name="Feeds").click()
        await page.wait_for_url(f"{web.url}/console/feeds")
        row = page.locator('#feeds tr[data-source="demo"]')
        assert await row.get_attribute("data-state") == "stale"
        assert "no event for" in await row.inner_text()
        assert await page.locator("#feeds-alerting").inner_text() == "1"
        await check_page(page, axe_script, shots, f"console-feeds-{width}")

    # Events again: the API (and so the page) shows it ok.
    await stack.publish_events([json.dumps(event("TRANSFERRED", OFFENDER, source="demo"))])
    back = await eventually(demo("ok"), 60, "the demo source ok again")
    assert dt.datetime.fromisoformat(back["last_seen_at"]) > as_of
    shown = await asyncio.to_thread(fetch, f"{web.url}/offenders/{OFFENDER}")
    assert STRINGS["en"]["data_stale"] not in shown[2]
