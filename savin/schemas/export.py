"""JSON Schema files for producers in any language.

Each schema accepts what savin accepts: timestamps, dates, ids and amounts
carry the same patterns the models check (:mod:`savin.schemas.base`), so a
validator with format checks off gives the same verdict as savin.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from savin.schemas.consent import Attempts, ConsentChange, Verification
from savin.schemas.escalation import Acknowledgement, CallRecord, Escalation, RegistrationFlag
from savin.schemas.events import EVENT_ADAPTER, EVENT_MODELS, SCHEMA_VERSION
from savin.schemas.notices import DeadLetter, DeadLetterReplay, DeliveryResult, NoticeJob
from savin.schemas.operators import ApiToken, OperatorAccount, OperatorAction, SessionEnded
from savin.schemas.registration import Registration
from savin.schemas.safety import FeedCounts, FeedStatusChange, HeldNotice, Hold, HoldCounts
from savin.schemas.status import OffenderStatus

__all__ = ["SCHEMA_BASE", "published_schemas", "export"]

#: Where the schemas' ``$id`` values point; a file's ``$id`` is this plus its
#: path in the exported directory, so the ids stay unique and stable.
SCHEMA_BASE = f"https://savin.invalid/schemas/v{SCHEMA_VERSION}/"


def _schema(model: type[BaseModel] | TypeAdapter, title: str, name: str) -> dict:
    schema = model.json_schema() if isinstance(model, TypeAdapter) else model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_BASE + name,
            "title": title, **schema}


def published_schemas() -> dict[str, dict]:
    """File name -> JSON Schema, for every published model."""
    models: dict[str, tuple[type[BaseModel] | TypeAdapter, str]] = {
        "custody-event.schema.json": (EVENT_ADAPTER, "CustodyEvent"),
        "registration.schema.json": (Registration, "Registration"),
        "notice-job.schema.json": (NoticeJob, "NoticeJob"),
        "delivery-result.schema.json": (DeliveryResult, "DeliveryResult"),
        "dead-letter.schema.json": (DeadLetter, "DeadLetter"),
        "dead-letter-replay.schema.json": (DeadLetterReplay, "DeadLetterReplay"),
        "offender-status.schema.json": (OffenderStatus, "OffenderStatus"),
        "consent-change.schema.json": (ConsentChange, "ConsentChange"),
        "verification.schema.json": (Verification, "Verification"),
        "attempts.schema.json": (Attempts, "Attempts"),
        "acknowledgement.schema.json": (Acknowledgement, "Acknowledgement"),
        "escalation.schema.json": (Escalation, "Escalation"),
        "call.schema.json": (CallRecord, "CallRecord"),
        "registration-flag.schema.json": (RegistrationFlag, "RegistrationFlag"),
        "operator-account.schema.json": (OperatorAccount, "OperatorAccount"),
        "api-token.schema.json": (ApiToken, "ApiToken"),
        "session-ended.schema.json": (SessionEnded, "SessionEnded"),
        "operator-action.schema.json": (OperatorAction, "OperatorAction"),
        "hold.schema.json": (Hold, "Hold"),
        "held-notice.schema.json": (HeldNotice, "HeldNotice"),
        "hold-counts.schema.json": (HoldCounts, "HoldCounts"),
        "feed-counts.schema.json": (FeedCounts, "FeedCounts"),
        "feed-status-change.schema.json": (FeedStatusChange, "FeedStatusChange"),
    }
    for event_type, model in EVENT_MODELS.items():
        models[f"events/{event_type}.schema.json"] = (model, model.__name__)
    return {name: _schema(model, title, name) for name, (model, title) in models.items()}


def export(directory: Path) -> list[Path]:
    written = []
    for name, schema in published_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
