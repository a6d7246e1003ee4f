"""JSON Schema files for producers in any language."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from savin.schemas.events import EVENT_ADAPTER, EVENT_MODELS
from savin.schemas.notices import DeadLetter, DeliveryResult, NoticeJob
from savin.schemas.registration import Registration

__all__ = ["published_schemas", "export"]


def _schema(model: type[BaseModel] | TypeAdapter, title: str) -> dict:
    schema = model.json_schema() if isinstance(model, TypeAdapter) else model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}


def published_schemas() -> dict[str, dict]:
    """File name -> JSON Schema, for every published model."""
    out = {
        "custody-event.schema.json": _schema(EVENT_ADAPTER, "CustodyEvent"),
        "registration.schema.json": _schema(Registration, "Registration"),
        "notice-job.schema.json": _schema(NoticeJob, "NoticeJob"),
        "delivery-result.schema.json": _schema(DeliveryResult, "DeliveryResult"),
        "dead-letter.schema.json": _schema(DeadLetter, "DeadLetter"),
    }
    for event_type, model in EVENT_MODELS.items():
        out[f"events/{event_type}.schema.json"] = _schema(model, model.__name__)
    return out


def export(directory: Path) -> list[Path]:
    written = []
    for name, schema in published_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
