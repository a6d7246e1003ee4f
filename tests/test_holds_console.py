"""Holds in the operator console and API (the worker and `savin web` as their own processes, a
real browser): a burst held by the match stage is listed for a viewer, who may not decide it; an
operator rejects one hold in the browser, blocks an offender's notices and approves the block over
the API; each decision names its operator and is on the audit trail. Pages axe-clean, phone-wide."""

from __future__ import annotations

import json
import re

import pytest
from support import event, eventually, phone, registration
from test_console_browser import PASSWORD, sign_in
from test_portal import check_page, screenshots_dir

from savin.dev.testing.console_client import api_client
from savin.domain.clock import utcnow
from savin.ops.holds import read_holds
from savin.ops.operators import new_account, write_records
from savin.schemas import DeliveryStatus
from savin.schemas.operators import Role

pytestmark = pytest.mark.e2e


async def test_holds_are_decided_in_the_console_and_the_api(stack, browser_page, axe_script, tmp_path):
    shots = screenshots_dir(tmp_path)
    s = stack.settings()
    await write_records(s, [new_account(n, r, PASSWORD, utcnow(), "cli")
                            for n, r in (("vera", Role.VIEWER), ("otto", Role.OPERATOR))])
    await stack.import_registrations([registration(f"R-{i}", f"OFF-{i}", sms=phone(i)) for i in range(8)])
    # A rule small enough for a test: more than 5 ESCAPED from one source in 10 minutes.
    stack.start_worker(SAVIN_HOLD_RULES="ESCAPED=5/600")
    web = stack.start_web()
    url = web.url
    await stack.wait_caught_up(stack.topics.registrations)
    await stack.publish_events([json.dumps(event("ESCAPED", f"OFF-{i}", source="mo-jail-feed")) for i in range(8)])
    await stack.wait_caught_up(stack.topics.custody_events)

    async def opened():
        return [h for h in await read_holds(s) if h.state.value == "open"]

    (hold,) = await eventually(opened, 30, "the hold opened")
    await stack.wait_caught_up(stack.topics.notices_urgent)
    assert stack.twilio.messages == []

    # ---- a viewer sees the hold and may not decide it -------------------------------------------
    viewer = await browser_page(1280, 900)
    await sign_in(viewer, url, "vera")
    await viewer.goto(f"{url}/console")
    assert re.search(r"\b1\s+hold waiting for a decision", await viewer.locator("main").inner_text())
    await viewer.goto(f"{url}/console/holds")
    assert "ESCAPED from mo-jail-feed" in await viewer.locator("main").inner_text()
    await check_page(viewer, axe_script, shots, "console-holds-desktop")
    await viewer.get_by_role("link", name=str(hold.hold_id)[:8]).click()
    assert "8 held so far" in await viewer.locator("main").inner_text()
    assert await viewer.get_by_role("button", name=re.compile("Approve")).count() == 0

    # ---- an operator rejects it, after a refusal for a missing reason ------------------------------
    operator = await browser_page(360, 740)
    await sign_in(operator, url, "otto")
    await operator.goto(f"{url}/console/holds/{hold.hold_id}")
    await check_page(operator, axe_script, shots, "console-hold-phone")
    await operator.get_by_role("button", name=re.compile("Reject")).click()
    assert "Error:" in await operator.title()
    assert "Say why" in await operator.locator(".error-summary").inner_text()
    await check_page(operator, axe_script, shots, "console-hold-error-phone")
    await operator.get_by_label("Why").fill("A county jail reloaded its roster")
    await operator.get_by_role("button", name=re.compile("Reject")).click()
    await operator.wait_for_url(re.compile(rf"/console/holds/{hold.hold_id}$"))
    text = await operator.locator("main").inner_text()
    assert "rejected" in text and "by otto: A county jail reloaded its roster" in text
    assert "8 recorded as rejected" in text
    rejected = [r for r in await stack.results() if r.status is DeliveryStatus.REJECTED]
    assert len(rejected) == 8 and {r.decided_by for r in rejected} == {"otto"}

    # ---- over the API: a block, refused to a viewer's token, approved by an operator's ----------------
    from support import savin

    tokens = {}
    for name, scope in (("vera", "viewer"), ("otto", "operator")):
        done = savin(["operators", "token", "create", name, "--scope", scope], env=stack.env())
        assert done.returncode == 0, done.stderr
        tokens[scope] = done.stdout.strip().splitlines()[-1]
    with api_client(url, tokens["viewer"]) as api:
        assert api.post("/holds/block", json={"offender_id": "OFF-1", "why": "fixing"}).status_code == 403
    with api_client(url, tokens["operator"]) as api:
        r = api.post("/holds/block", json={"offender_id": "OFF-1", "why": "Record under correction"})
        assert r.status_code == 201, r.text
        block = r.json()
        assert (block["kind"], block["offender_id"], block["opened_by"]) == ("offender", "OFF-1", "otto")
        again = api.post("/holds/block", json={"offender_id": "OFF-1", "why": "twice"})
        assert again.status_code == 409
        transfer = event("TRANSFERRED", "OFF-1")
        await stack.publish_events([json.dumps(transfer)])
        await stack.wait_caught_up(stack.topics.custody_events)

        def held_one():
            return api.get(f"/holds/{block['hold_id']}").json().get("notices") == 1

        await eventually(held_one, 30, "the transfer's notice held by the block")
        assert stack.twilio.messages == []
        r = api.post(f"/holds/{block['hold_id']}/approve", json={"why": "Record fixed"})
        assert r.status_code == 200, r.text
        assert r.json()["notices"] == 1 and r.json()["hold"]["decided_by"] == "otto"
        assert api.get("/holds/not-a-hold").status_code == 404
    assert stack.twilio.wait_for(1, timeout=60)
    assert [m.to for m in stack.twilio.messages] == [phone(1)]

    # Every decision is on the audit trail, naming its operator.
    await operator.goto(f"{url}/console/audit")
    audit = await operator.locator("main").inner_text()
    assert "hold.reject" in audit and "hold.block" in audit and "hold.approve" in audit
    await operator.goto(f"{url}/console/holds")
    await check_page(operator, axe_script, shots, "console-holds-phone")
