"""Builders and helpers shared by the tests."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
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
