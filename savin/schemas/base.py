from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["Strict", "describe_errors"]


class Strict(BaseModel):
    """Base for every published model: strict types, immutable, no unknown fields."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """One line naming each bad field, e.g. ``payload.facility: Field required``.

    Input values are left out on purpose: they may hold personal data.
    """
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        if not loc and err["type"].startswith("union_tag"):
            loc = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
        loc = loc or "(document)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)
