"""An offender's current status as the custody events tell it: what the
portal's offender search shows. Public-record facts only."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from savin.schemas.base import Day, Strict, Timestamp
from savin.schemas.payloads import Text

__all__ = ["CustodyStatus", "NextHearing", "OffenderStatus"]

OffenderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class CustodyStatus(str, enum.Enum):
    IN_CUSTODY = "in_custody"
    RELEASED = "released"
    ESCAPED = "escaped"
    ON_SUPERVISION = "on_supervision"
    ABSCONDED = "absconded"
    DISCHARGED = "discharged"
    DECEASED = "deceased"
    UNKNOWN = "unknown"


class NextHearing(Strict):
    hearing_id: Text
    starts_at: Timestamp
    location: Text


class OffenderStatus(Strict):
    """One record per offender on ``<ns>.offender-status`` (compacted, keyed by offender id)."""

    offender_id: OffenderId
    offender_name: Text
    status: CustodyStatus
    #: The facility (in custody) or district office (on supervision), when known.
    location: Text | None = None
    #: A projected release date, when one is scheduled (YYYY-MM-DD).
    release_date: Day | None = None
    next_hearing: NextHearing | None = None
    last_event_type: str
    last_event_at: Timestamp
    updated_at: Timestamp
    #: The upstream source of the newest event (the feed the status is "as of").
    source: Text | None = None
