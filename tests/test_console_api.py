"""The operator API (`savin web` and the worker as their own processes, on the
real broker): what the console does, as JSON, with bearer tokens. Its OpenAPI
document is a valid OpenAPI 3.1 description (checked by openapi-core), is the
one committed in docs/operator-api.json, and every request and answer here is
validated against it: the notices of a registration and a timeline, a dead
letter inspected with its personal data redacted and replayed idempotently,
accounts and tokens managed by an admin, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from support import event, eventually, registration

from savin.dev.testing.console_client import api_client
from savin.domain.clock import utcnow
from savin.ops.operators import issue_token, new_account, write_records
from savin.schemas.operators import Role

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[1] / "docs" / "operator-api.json"
OFFENDER = "MO-API-1"


class Checked:
    """An API client whose every request and answer is validated against the OpenAPI document."""

    def __init__(self, url: str, token: str, spec: OpenAPI):
        self.http = api_client(url, token)
        self.spec = spec
        self.url = url

    def __call__(self, method: str, path: str, body: dict | None = None, params: dict | None = None):
        r = self.http.request(method, path, json=body, params=params)
        data = json.dumps(body).encode() if body is not None else None
        request = MockRequest(self.url, method.lower(), "/api/v1" + path, args=params or {},
                              headers={"Authorization": self.http.headers["Authorization"]}, data=data)
        self.spec.validate_request(request)
        self.spec.validate_response(request, MockResponse(r.content, r.status_code,
                                                          content_type=r.headers.get("content-type", "")))
        return r


async def test_the_api_does_what_the_console_does(stack):
    s = stack.settings()
    now = utcnow()
    tokens = {}
    records = [new_account(n, r, "an api test password", now, "cli")
               for n, r in (("vera", Role.VIEWER), ("otto", Role.OPERATOR), ("ada", Role.ADMIN))]
    for owner, scope in (("vera", Role.VIEWER), ("otto", Role.OPERATOR), ("ada", Role.ADMIN)):
        token, whole = issue_token(owner, scope, now)
        records.append(token)
        tokens[scope.value] = whole
    await write_records(s, records)
    await stack.import_registrations([registration("R-API-1", OFFENDER, sms="+15735550199",
                                                   email="lee.api@example.org", name="Lee Api")])
    stack.start_worker(SAVIN_QUIET_HOURS="none")
    web = stack.start_web(SAVIN_LAG_INTERVAL="0.5")
    await stack.wait_caught_up(stack.topics.registrations)
    await stack.publish_events([json.dumps(event("TRANSFERRED", OFFENDER))])
    await stack.publish_raw(json.dumps({"event_type": "RELEASED", "offender_id": OFFENDER,
                                        "offender_name": "Lee Api Offender", "victim_phone": "+15735550199"}).encode(),
                            key=OFFENDER.encode())

    doc = api_client(web.url, tokens["viewer"]).get("/openapi.json")
    assert doc.status_code == 200
    served = doc.json()
    assert served["openapi"].startswith("3.1")
    spec = OpenAPI.from_dict(served)  # checks the document against the OpenAPI 3.1 schema
    assert served == json.loads(DOC.read_text()), "docs/operator-api.json is out of date: " \
        "python -m savin.web.console.api > docs/operator-api.json"
    viewer, operator, admin = (Checked(web.url, tokens[r], spec) for r in ("viewer", "operator", "admin"))

    # Notices of the registration, and one's timeline.
    async def delivered():
        found = viewer("GET", "/notices", params={"q": "R-API-1"}).json()
        return len(found) == 2 and all(n["status"] in ("accepted", "sent", "delivered") for n in found) and found

    found = await eventually(delivered, 60, "the registration's two notices accepted")
    assert {n["channel"] for n in found} == {"sms", "email"} and {n["offender_id"] for n in found} == {OFFENDER}
    timeline = viewer("GET", f"/notices/{found[0]['notice_id']}").json()
    kinds = [e["kind"] for e in timeline["entries"]]
    assert kinds[0] == "event" and "matched" in kinds and "attempt" in kinds
    assert "+15735550199" not in json.dumps(timeline) and "lee.api@example.org" not in json.dumps(timeline)
    assert viewer("GET", "/notices/00000000-0000-4000-8000-000000000000").status_code == 404
    missing = viewer("GET", "/notices")
    assert missing.status_code == 400 and missing.json()["field"] == "q"

    # The overview and the lag.
    async def looked():
        o = viewer("GET", "/overview").json()
        return o["looked_at"] and {st["stage"] for st in o["stages"]} >= {"match", "deliver"} and o

    overview = await eventually(looked, 30, "the overview's first look at the stages")
    assert overview["dead_letters"] >= 1

    # A dead letter, redacted, replayed once.
    letters = viewer("GET", "/dead-letters").json()
    letter = next(d for d in letters if d["source_topic"].endswith("custody-events"))
    detail = viewer("GET", f"/dead-letters/{letter['dead_letter_id']}").json()
    assert "+15735550199" not in detail["payload_redacted"] and "Lee Api Offender" not in detail["payload_redacted"]
    refused = viewer("POST", "/dead-letters/replay", {"ids": [letter["dead_letter_id"]]})
    assert refused.status_code == 403
    first = operator("POST", "/dead-letters/replay", {"ids": [letter["dead_letter_id"]]}).json()
    assert first["sent"] == [letter["dead_letter_id"]]
    again = operator("POST", "/dead-letters/replay", {"ids": [letter["dead_letter_id"]]}).json()
    assert again["sent"] == [] and again["already_replayed"] == [letter["dead_letter_id"]]
    empty = operator("POST", "/dead-letters/replay", {})
    assert empty.status_code == 400 and empty.json()["field"] == "ids"

    # A registration: contacts masked, its notices.
    reg = viewer("GET", "/registrations/R-API-1").json()
    text = json.dumps(reg)
    assert "+15735550199" not in text and "lee.api@example.org" not in text and "Lee Api" not in text
    assert len(reg["notices"]) == 2
    assert viewer("GET", "/registrations/R-NOPE").status_code == 404

    # Accounts and tokens: only an admin; the new token works at once and stops when revoked.
    assert operator("GET", "/operators").status_code == 403
    made = admin("POST", "/operators", {"name": "nina", "role": "viewer"})
    assert made.status_code == 201 and len(made.json()["password"]) >= 12
    bad = admin("POST", "/operators", {"name": "Nina Smith", "role": "viewer"})
    assert bad.status_code == 400 and bad.json()["field"] == "name"
    dup = admin("POST", "/operators", {"name": "nina", "role": "viewer"})
    assert dup.status_code == 409
    too_much = admin("POST", "/tokens", {"owner": "nina", "scope": "admin"})
    assert too_much.status_code == 400 and too_much.json()["field"] == "scope"
    created = admin("POST", "/tokens", {"owner": "nina", "scope": "viewer", "label": "dashboards"}).json()
    nina = Checked(web.url, created["secret"], spec)
    assert nina("GET", "/lag").status_code == 200
    admin("POST", f"/tokens/{created['token']['token_id']}/revoke")

    async def revoked():
        return nina("GET", "/lag").status_code == 401

    await eventually(revoked, 15, "the revoked token refused")
    listed = admin("GET", "/operators").json()
    assert {a["name"] for a in listed["accounts"]} == {"vera", "otto", "ada", "nina"}
    assert "argon2" not in json.dumps(listed) and created["secret"].split("_")[2] not in json.dumps(listed)
    disabled = admin("POST", "/operators/otto", {"disabled": True})
    assert disabled.json()["disabled"] is True

    async def otto_out():
        return operator("GET", "/overview").status_code == 401

    await eventually(otto_out, 15, "a disabled account's token refused")

    # The audit trail names who did what, with the ids.
    actions = admin("GET", "/audit", params={"limit": 500}).json()
    replays = [a for a in actions if a["action"] == "dead-letters.replay"]
    assert len(replays) == 2 and all(a["actor"].startswith("token:") and a["via"] == "api" for a in replays)
    assert any(a["ids"].get("dead_letter") == [letter["dead_letter_id"]] for a in replays)
    assert any(a["action"] == "registration.view" and a["ids"] == {"registration": ["R-API-1"]} for a in actions)
    assert any(a["action"] == "access.refused" and a["outcome"] == "refused" for a in actions)
