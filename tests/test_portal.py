"""The portal (`savin web`) as its own process on a real broker, in Debian's
chromium: the offender status search in English and Spanish, axe-core clean,
security headers, a 360 px phone layout, and views that follow Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from savin.dev.testing.axe import axe_violations
from savin.domain.clock import utcnow
from savin.ops.reading import wait_until
from savin.schemas.status import OffenderStatus
from savin.streams.store import MemoryStore, open_store
from savin.topics import ensure_topics, partition_for, producer
from savin.web.portal.i18n import STRINGS
from savin.web.portal.views import Views, name_tokens

pytestmark = pytest.mark.e2e

WIDTHS = {"phone": (360, 740), "desktop": (1280, 900)}

JOSE = {
    "offender_id": "MO-4471002", "offender_name": "José Ángel Núñez Ortega", "status": "in_custody",
    "location": "Jefferson City Correctional Center", "release_date": "2027-03-15",
    "next_hearing": {"hearing_id": "H-88", "starts_at": "2027-02-10T15:30:00Z",
                     "location": "Parole Board, Room 2, Jefferson City"},
    "last_event_type": "TRANSFERRED", "last_event_at": "2026-11-20T15:25:00Z", "updated_at": "2026-11-20T15:25:01Z",
}
MARIA = {
    "offender_id": "MO-4471003", "offender_name": "Maria Nunez", "status": "on_supervision",
    "location": "District 7 Probation and Parole Office", "release_date": None, "next_hearing": None,
    "last_event_type": "SUPERVISION_STARTED", "last_event_at": "2026-10-02T13:00:00Z",
    "updated_at": "2026-10-02T13:00:01Z",
}


def screenshots_dir(tmp_path: Path) -> Path:
    """Where page screenshots go: SAVIN_SCREENSHOTS (e.g. docs/screenshots), else the test's own folder."""
    d = Path(os.environ.get("SAVIN_SCREENSHOTS") or tmp_path / "screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


async def publish_statuses(stack, *statuses: dict) -> None:
    s = stack.settings()
    await ensure_topics(s.kafka_bootstrap, stack.topics.specs(), s.replication_factor)
    prod = producer(s.kafka_bootstrap)
    await prod.start()
    try:
        for st in statuses:
            value = OffenderStatus.model_validate_json(json.dumps(st)).model_dump_json().encode()
            key = st["offender_id"].encode()
            await prod.send_and_wait(stack.topics.offender_status, value, key=key,
                                     partition=partition_for(key, s.partitions))
    finally:
        await prod.stop()


def fetch(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


async def check_page(page, axe_script: str, shots: Path, name: str) -> None:
    """axe clean, no script of the page's own, nothing wider than the window; a screenshot."""
    assert await page.locator("script").count() == 0
    violations = await axe_violations(page, axe_script)
    assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


async def test_offender_search_and_status_pages(stack, browser_page, axe_script, tmp_path):
    await publish_statuses(stack, JOSE, MARIA)
    web = stack.start_web()
    shots = screenshots_dir(tmp_path)

    # Every response carries the security headers, errors and health answers too.
    for path in ("/", "/search?q=", "/offenders/NOPE", "/readyz", "/static/portal.css"):
        status, headers, _ = fetch(web.url + path)
        assert status in (200, 400, 404), path
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert fetch(web.url + "/livez")[0] == 200
    # A form post without its token is refused.
    assert fetch(web.url + "/language", b"lang=es&next=/&csrf=forged")[0] == 403

    for lang in ("en", "es"):
        t = STRINGS[lang]
        for width_name, (width, height) in WIDTHS.items():
            page = await browser_page(width, height)
            tag = f"{lang}-{width_name}"
            await page.goto(f"{web.url}/?lang={lang}")
            assert await page.locator("html").get_attribute("lang") == lang
            assert await page.locator("h1").inner_text() == t["start_title"]
            await check_page(page, axe_script, shots, f"start-{tag}")

            # An empty search: the error summary links to the field.
            await page.get_by_role("button", name=t["search_button"]).click()
            summary = page.locator(".error-summary")
            assert t["error_summary_title"] in await summary.inner_text()
            assert await summary.locator("a[href='#q']").inner_text() == t["search_empty"]
            assert (await page.title()).startswith(t["error_title_prefix"])
            await check_page(page, axe_script, shots, f"search-error-{tag}")

            # By name, without accents and in another case: both Núñez are found.
            await page.get_by_label(t["search_label"]).fill("NUNEZ")
            await page.get_by_role("button", name=t["search_button"]).click()
            links = page.locator(".results__link")
            assert sorted(await links.all_inner_texts()) == ["José Ángel Núñez Ortega", "Maria Nunez"]
            await check_page(page, axe_script, shots, f"results-{tag}")

            # By id, in lower case.
            await page.get_by_label(t["search_label"]).fill("mo-4471002")
            await page.get_by_role("button", name=t["search_button"]).click()
            assert await links.all_inner_texts() == ["José Ángel Núñez Ortega"]
            await links.first.click()
            assert page.url.endswith("/offenders/MO-4471002")
            facts = await page.locator(".summary-list").inner_text()
            for expected in (t["status.in_custody"], "Jefferson City Correctional Center", "MO-4471002",
                             "Parole Board, Room 2, Jefferson City"):
                assert expected in facts
            if lang == "en":
                assert "Monday, March 15, 2027" in facts
                assert "Wednesday, February 10, 2027, at 9:30 AM CST" in facts
                assert "Friday, November 20, 2026, at 9:25 AM CST" in facts
            else:
                assert "lunes 15 de marzo de 2027" in facts
                assert "miércoles 10 de febrero de 2027, a las 9:30 CST" in facts
            await check_page(page, axe_script, shots, f"offender-{tag}")

            await page.goto(f"{web.url}/offenders/MO-0000000")
            assert await page.locator("h1").inner_text() == t["offender_not_found_title"]
            await check_page(page, axe_script, shots, f"not-found-{tag}")

            await page.goto(f"{web.url}/search?q=Zzyzx")
            assert t["results_none"] in await page.locator("main").inner_text()
            await check_page(page, axe_script, shots, f"no-results-{tag}")

    # The language switch is a form post (with its token) that returns to the same page.
    page = await browser_page()
    await page.goto(f"{web.url}/offenders/MO-4471003")
    await page.get_by_role("button", name="Language: Español").click()
    await page.wait_for_url("**/offenders/MO-4471003")
    assert await page.locator("html").get_attribute("lang") == "es"
    assert STRINGS["es"]["status.on_supervision"] in await page.locator(".summary-list").inner_text()
    await page.goto(f"{web.url}/")
    assert await page.locator("h1").inner_text() == STRINGS["es"]["start_title"]  # remembered

    # The views keep following Kafka: a release shows up without a restart.
    released = {**JOSE, "status": "released", "location": None, "release_date": None,
                "last_event_type": "RELEASED", "last_event_at": "2026-11-21T10:00:00Z"}
    await publish_statuses(stack, released)

    async def shows_release():
        return STRINGS["en"]["status.released"] in fetch(f"{web.url}/offenders/MO-4471002?lang=en")[2]

    await wait_until(shows_release, 30, what="the portal to show the release")


async def test_every_web_process_reads_every_partition_and_a_restart_reads_only_what_it_missed(stack, tmp_path):
    statuses = [{**MARIA, "offender_id": f"MO-77{i:05d}", "offender_name": f"Ana Prueba{i}"} for i in range(12)]
    await publish_statuses(stack, *statuses)
    s = stack.settings()
    assert len({partition_for(st["offender_id"].encode(), s.partitions) for st in statuses}) > 1
    one, two = stack.start_web(), stack.start_web()
    for web in (one, two):
        for st in statuses:
            assert st["offender_name"] in fetch(f"{web.url}/offenders/{st['offender_id']}")[2]

    store_path = tmp_path / "views"
    views = Views(s.kafka_bootstrap, stack.topics.offender_status, stack.topics.registrations,
                  open_store(store_path, 8, 2))
    await _run_until_ready(views)
    assert views.offender("MO-7700003").offender_name == "Ana Prueba3"
    assert [v.offender_id for v in views.find_offenders("prueba1")] == ["MO-7700001", "MO-7700010", "MO-7700011"]
    views.store.close()

    await publish_statuses(stack, {**statuses[3], "status": "deceased"})
    again = Views(s.kafka_bootstrap, stack.topics.offender_status, stack.topics.registrations,
                  open_store(store_path, 8, 2))
    assert again.find_offenders("ana prueba3")[0].offender_id == "MO-7700003"  # the name index, from the store
    await _run_until_ready(again)
    assert again.applied == 1
    assert again.offender("MO-7700003").status.value == "deceased"
    again.store.close()


async def test_registrations_view_by_id_and_blind_index(stack):
    from savin.schemas import Registration
    from savin.sealing import Sealer, seal_registration
    from savin.settings import DataKeys
    from savin.topics import registration_record

    sealer = Sealer(DataKeys.parse(stack.data_key), index_key=os.urandom(32))

    s = stack.settings()
    await ensure_topics(s.kafka_bootstrap, stack.topics.specs(), s.replication_factor)
    reg = Registration.model_validate_json(json.dumps({
        "registration_id": "R-VIEW-1", "offender_id": "MO-4471002", "name": "Test Person",
        "contacts": [{"channel": "sms", "address": "+15735550100", "verified": True}]}))
    stored = seal_registration(reg, sealer, utcnow())
    key, value, partition = registration_record(stored, s.partitions)
    prod = producer(s.kafka_bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(stack.topics.registrations, value, key=key, partition=partition)
        # A tombstone of a registration never seen is harmless.
        await prod.send_and_wait(stack.topics.registrations, None, key=b"R-GONE", partition=0)
    finally:
        await prod.stop()
    views = Views(s.kafka_bootstrap, stack.topics.offender_status, stack.topics.registrations, MemoryStore())
    await _run_until_ready(views)
    assert views.registration("R-VIEW-1") == stored
    assert views.registration("R-GONE") is None
    (index,) = {c.blind_index for c in stored.contacts}
    assert index == sealer.blind_index("+15735550100")
    assert views.registrations_with_index(index) == [stored]
    assert views.registrations_with_index("no-such-index") == []


def test_name_tokens_ignore_case_accents_and_punctuation():
    assert name_tokens("José  O'Brien-NÚÑEZ") == ["jose", "o", "brien", "nunez"]


async def _run_until_ready(views: Views) -> None:
    task = asyncio.create_task(views.run())
    try:
        await asyncio.wait_for(views.ready.wait(), 60)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def test_custody_events_through_the_worker_show_on_the_portal(stack, browser_page):
    """Upstream events go through the worker's status stage to offender-status, and the
    portal (a process of its own) shows the offender's status from it."""
    from support import event

    stack.start_worker()
    web = stack.start_web()
    offender = "MO-E2E-STATUS"
    name = {"offender_name": "Renata Quillon Ibarra"}
    transferred = event("TRANSFERRED", offender) | name
    hearing = event("HEARING_SCHEDULED", offender, occurred_at="2026-11-20T15:05:00-06:00") | name
    report = await stack.publish_events([json.dumps(transferred), json.dumps(hearing)])
    assert report.errors == []

    async def shown():
        return fetch(f"{web.url}/offenders/{offender}")[0] == 200

    await wait_until(shown, 60, what="the portal to show the offender")
    page = await browser_page(360, 740)
    await page.goto(f"{web.url}/search?q=renata+ibarra&lang=en")
    await page.locator(".results__link").first.click()
    facts = await page.locator(".summary-list").inner_text()
    assert "Potosi Correctional Center" in facts
    assert "Parole Board, 3400 Knipp Dr, Jefferson City" in facts
    assert "Wednesday, February 10, 2027, at 9:30 AM CST" in facts


def test_every_language_has_every_word_and_a_label_for_every_status():
    from savin.schemas.status import CustodyStatus

    for lang, table in STRINGS.items():
        assert set(table) == set(STRINGS["en"]), lang
        for status in CustodyStatus:
            assert table[f"status.{status.value}"], (lang, status)


async def _asgi_get(app, path: str) -> tuple[int, dict]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "headers": [], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "root_path": ""}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


async def test_readyz_answers_503_until_the_views_are_restored():
    from savin.dev.broker import free_port
    from savin.sealing import new_key
    from savin.settings import load_settings
    from savin.web.portal.app import create_app

    s = load_settings(_env_file=None, development=True, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                      data_key=f"k1:{new_key()}", index_key=new_key())
    views = Views(s.kafka_bootstrap, "t.offender-status", "t.registrations", MemoryStore())
    app = create_app(s, views)
    async with app.router.lifespan_context(app):
        status, body = await _asgi_get(app, "/readyz")
        assert (status, body["ready"], body["checks"]["views"]["detail"]) == (503, False, "restoring from Kafka")
        assert (await _asgi_get(app, "/livez"))[0] == 200
        views.ready.set()
        assert await _asgi_get(app, "/readyz") == (200, {"ready": True, "checks": {"views": {"ok": True}}})
