"""Precise corrections: what a correction of one notice comes to, given what the
ledger knows of that notice.

A retracted event's correction goes only where its notice went. The match stage
sends one correction job per notice the event could have had (``corrects``: that
notice's id); the deliver stage, which owns the ledger, decides here:

* the notice **went out** (a provider took it, whatever came of it later): the
  correction is sent, on the same channel and contact;
* it **may still go out** (not seen yet, waiting for a retry, held through quiet
  hours, a call still to come on its ladder): it is cancelled, so it is dropped
  whenever it arrives, and nothing needs correcting;
* it **never went out and never will** (failed, suppressed, rejected, cancelled):
  nothing is sent.

A text or an email is one send: the notice itself. A voice number on an
escalation ladder is called in rounds, each call its own notice; its sends are
the calls placed to it, and one still to come while the ladder is open.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from savin.schemas import DeliveryStatus

__all__ = ["Correction", "WENT_OUT", "STILL_TO_GO", "correction"]


class Correction(str, enum.Enum):
    CORRECTED = "corrected"  # the notice went out: the correction is sent
    CANCELLED = "cancelled"  # the notice had not gone out: it is cancelled, the correction is not sent
    NONE = "none"  # the notice never went out: nothing is sent


#: A provider took it: the registrant may have read it.
WENT_OUT = frozenset({DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED,
                      DeliveryStatus.UNDELIVERED})
#: Not yet sent, but it would be: unknown to the ledger (None), waiting for a retry, held.
STILL_TO_GO = frozenset({None, DeliveryStatus.RETRYING, DeliveryStatus.HELD})


def correction(sends: Iterable[DeliveryStatus | None]) -> Correction:
    """What a correction of a notice comes to, from what the ledger knows of each of the
    notice's sends (None: a send it does not know, or one still to come)."""
    sends = list(sends)
    if any(s in WENT_OUT for s in sends):
        return Correction.CORRECTED
    if any(s in STILL_TO_GO for s in sends):
        return Correction.CANCELLED
    return Correction.NONE
