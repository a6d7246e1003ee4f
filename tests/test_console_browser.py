"""The operator console in a real browser (Debian's chromium, headless), with
the worker and `savin web` as their own processes on the real broker: a viewer,
an operator and an admin sign in; the overview shows a stage's lag rise during
a burst the provider's pace cannot keep up with and fall back to 0 after it; a
notice's timeline; a dead letter inspected (personal data redacted) and
replayed once; each refused what their role may not do. Every page is
axe-clean and fits a phone; screenshots go to SAVIN_SCREENSHOTS."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from support import event, registration
from test_portal import check_page, screenshots_dir

from savin.domain.clock import utcnow
from savin.ops.operators import new_account, write_records
from savin.schemas.operators import Role

pytestmark = pytest.mark.e2e

PASSWORD = "a console password for tests"
OFFENDER = "MO-CONSOLE-1"
BURST = 150


async def sign_in(page, url: str, name: str) -> None:
    await page.goto(f"{url}/console")
    assert "/console/login" in page.url
    await page.get_by_label("Account name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/console$"))
    assert name in await page.locator(".console-who").inner_text()


async def stage_lag(page, url: str, stage: str) -> int | None:
    """The lag the overview shows for ``stage``, summed over its partitions (None before a look)."""
    await page.goto(f"{url}/console")
    cells = page.locator(f"#stage-{stage} td[data-lag]")
    if await cells.count() == 0:
        return None
    return sum(int(v) for v in await cells.evaluate_all("cells => cells.map(c => c.dataset.lag)"))


async def test_operators_see_and_steer_in_a_browser(stack, browser_page, axe_script, tmp_path):
    shots = screenshots_dir(tmp_path)
    s = stack.settings()
    now = utcnow()
    await write_records(s, [new_account(n, r, PASSWORD, now, "cli")
                            for n, r in (("vera", Role.VIEWER), ("otto", Role.OPERATOR), ("ada", Role.ADMIN))])
    await stack.import_registrations([registration("R-CONSOLE-1", OFFENDER, sms="+15735550142",
                                                   email="pat.console@example.org", name="Pat Console")])
    # One send at a time, each taking 50 ms at the provider: a burst of 150 notices takes seconds to drain.
    stack.twilio.latency = 0.05
    stack.start_worker(SAVIN_LAG_INTERVAL="0.5", SAVIN_SEND_BATCH_SIZE="1", SAVIN_QUIET_HOURS="none")
    web = stack.start_web(SAVIN_LAG_INTERVAL="0.5")
    url = web.url
    await stack.wait_caught_up(stack.topics.registrations)
    # A malformed event, dead-lettered with its reason.
    await stack.publish_raw(json.dumps({"event_type": "RELEASED", "offender_id": OFFENDER,
                                        "offender_name": "Pat Console Offender"}).encode(), key=OFFENDER.encode())

    # ---- a viewer: the overview, the lag of a burst, refusals --------------------------------
    viewer = await browser_page(1280, 900)
    await sign_in(viewer, url, "vera")
    deadline = time.monotonic() + 30
    while await stage_lag(viewer, url, "deliver") is None:
        assert time.monotonic() < deadline, "the overview never showed the deliver stage"
        await asyncio.sleep(0.5)
    await check_page(viewer, axe_script, shots, "console-overview-desktop")

    burst = [json.dumps(event("TRANSFERRED", OFFENDER)) for _ in range(BURST)]
    await stack.publish_events(burst)
    seen = []
    peak = 0
    deadline = time.monotonic() + 120
    while True:
        lag = await stage_lag(viewer, url, "deliver") or 0
        seen.append(lag)
        if lag > peak:
            peak = lag
            if lag >= 20:
                await viewer.screenshot(path=str(shots / "console-overview-burst-desktop.png"), full_page=True)
        if peak >= 20 and lag == 0:
            break
        assert time.monotonic() < deadline, f"the lag did not rise and fall back: {seen}"
        await asyncio.sleep(0.4)
    assert peak >= 20, seen
    # It fell back: the last looks are 0 and the stage is OK.
    assert "OK" in await viewer.locator("#stage-deliver caption").inner_text()

    # A viewer reads dead letters but cannot replay them.
    await viewer.goto(f"{url}/console/dead-letters")
    assert await viewer.locator("table tbody tr").count() >= 1
    assert await viewer.get_by_role("button", name="Replay the chosen").count() == 0
    # Nor reach the accounts.
    await viewer.goto(f"{url}/console/operators")
    assert await viewer.locator("h1").inner_text() == "You cannot do that"
    assert "admin role" in await viewer.locator("main").inner_text()
    await check_page(viewer, axe_script, shots, "console-refused-desktop")

    # ---- an operator: a notice's timeline, a dead letter replayed ----------------------------
    operator = await browser_page(360, 740)
    await sign_in(operator, url, "otto")
    await check_page(operator, axe_script, shots, "console-overview-phone")
    await operator.goto(f"{url}/console/notices")
    await operator.get_by_label("Notice, event, registration or offender id").fill("R-CONSOLE-1")
    await operator.get_by_role("button", name="Search").click()
    rows = operator.locator("table tbody tr")
    assert await rows.count() == 100  # of the burst's 300, the newest 100
    assert "The newest 100 notices for R-CONSOLE-1" in await operator.locator("caption").inner_text()
    await check_page(operator, axe_script, shots, "console-notices-phone")
    await rows.first.locator("a").first.click()
    await operator.wait_for_url(re.compile(r"/console/notices/[0-9a-f-]{36}$"))
    timeline = operator.locator(".timeline__item")
    kinds = await timeline.evaluate_all("items => items.map(i => i.className)")
    assert any("--event" in k for k in kinds) and any("--matched" in k for k in kinds)
    assert any("--attempt" in k for k in kinds), kinds
    body = await operator.locator("main").inner_text()
    assert "+15735550142" not in body and "pat.console@example.org" not in body and "Pat Console" not in body
    await check_page(operator, axe_script, shots, "console-timeline-phone")

    operator_desktop = await browser_page(1280, 900)
    await sign_in(operator_desktop, url, "otto")
    await operator_desktop.goto(f"{url}/console/dead-letters")
    first = operator_desktop.locator("table tbody tr").first
    await first.locator("a").first.click()
    await operator_desktop.wait_for_url(re.compile(r"/console/dead-letters/[0-9a-f-]{36}$"))
    letter_id = operator_desktop.url.rsplit("/", 1)[1]
    payload = await operator_desktop.locator(".payload").inner_text()
    assert "Pat Console Offender" not in payload and "[redacted]" in payload
    await check_page(operator_desktop, axe_script, shots, "console-dead-letter-desktop")
    await operator_desktop.get_by_role("button", name="Replay this dead letter").click()
    assert "1 dead letters replayed" in await operator_desktop.locator(".notification").inner_text()
    await check_page(operator_desktop, axe_script, shots, "console-replayed-desktop")
    # Replayed once: the letter now says so and offers no second replay.
    await operator_desktop.goto(f"{url}/console/dead-letters/{letter_id}")
    assert await operator_desktop.get_by_role("button", name="Replay this dead letter").count() == 0
    assert "Replayed" in await operator_desktop.locator("main").inner_text()
    await operator_desktop.goto(f"{url}/console/operators")
    assert await operator_desktop.locator("h1").inner_text() == "You cannot do that"

    # ---- an admin: accounts, a token, the audit trail -----------------------------------------
    admin = await browser_page(1280, 900)
    await sign_in(admin, url, "ada")
    await admin.goto(f"{url}/console/operators")
    await admin.get_by_label("For account").select_option("vera")
    await admin.get_by_role("button", name="Make token").click()
    secret = await admin.locator(".secret").inner_text()
    assert secret.startswith("savin_T")
    await check_page(admin, axe_script, shots, "console-operators-desktop")
    await admin.goto(f"{url}/console/audit")
    audit = await admin.locator("table").inner_text()
    for expected in ("operator:otto", "dead-letters.replay", letter_id, "access.refused", "token.create"):
        assert expected in audit, expected
    await check_page(admin, axe_script, shots, "console-audit-desktop")
    # Signing out ends the session.
    await admin.get_by_role("button", name="Sign out").click()
    await admin.wait_for_url(re.compile(r"/console/login$"))
    await admin.goto(f"{url}/console/audit")
    assert "/console/login" in admin.url
    await check_page(admin, axe_script, shots, "console-login-desktop")
