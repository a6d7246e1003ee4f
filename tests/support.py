"""Builders and helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EVENTS = EXAMPLES / "events"
#: Credentials of the SMTP catcher the SMTP tests log in to.
SMTP_USER, SMTP_PASSWORD = "savin", "catcher-secret"


def phone(n: int) -> str:
    return f"+1314{n:07d}"


def registration(rid: str, offender: str, *, sms: str | None = None, email: str | None = None,
                 name: str = "Test Registrant", language: str = "en", **extra) -> str:
    contacts = []
    if sms:
        contacts.append({"channel": "sms", "address": sms, "verified": True})
    if email:
        contacts.append({"channel": "email", "address": email, "verified": True})
    return json.dumps({"registration_id": rid, "offender_id": offender, "name": name, "language": language,
                       "contacts": contacts, **extra})


def event(event_type: str, offender: str, **envelope) -> dict:
    """The example event of ``event_type`` for ``offender``, with a fresh event_id."""
    doc = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
    doc.update(event_id=str(uuid.uuid4()), offender_id=offender, offender_name="Jonah Test Doe", **envelope)
    return doc


def tally(values) -> tuple[int, int]:
    """(distinct, repeats) of ``values``."""
    counts = Counter(values)
    return len(counts), sum(c - 1 for c in counts.values())


@contextlib.asynccontextmanager
async def closing(notifier):
    """A notifier for the block, closed after it whatever happens."""
    try:
        yield notifier
    finally:
        await notifier.close()


def metric(metrics_text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in metrics_text.splitlines():
        m = re.match(rf"{name}(?:{{(.*)}})? (\S+)$", line)
        if m is None:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


async def eventually(predicate, timeout: float, what: str, interval: float = 0.2):
    """Wait until ``predicate()`` (plain or async) returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        # Plain predicates may block (an HTTP request), so they run off the loop.
        value = await predicate() if inspect.iscoroutinefunction(predicate) else await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def savin(args, env=None, stdin=None, timeout=120) -> subprocess.CompletedProcess:
    """The ``savin`` command as a user runs it, in its own process (80 columns wide)."""
    return subprocess.run([sys.executable, "-m", "savin.cli", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80", **(env or {})}, timeout=timeout)


def records(bootstrap: str, topic: str) -> list:
    """Every record now in ``topic`` (from outside any event loop)."""
    from savin.ops.reading import read_topic

    async def collect():
        return [r async for r in read_topic(bootstrap, topic)]

    return asyncio.run(collect())
