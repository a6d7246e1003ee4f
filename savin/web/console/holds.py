"""The console's and the API's holds: Holds on mass changes and offender blocks: list, approve, reject, block."""

from __future__ import annotations

from savin.web.console.parts import Part

__all__ = ["HoldsPart"]


class HoldsPart(Part):
    pass
