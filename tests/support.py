"""Builders shared by the end-to-end and fault tests."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
