"""The console's and the API's reports: Statutory deadline evidence and program statistics."""

from __future__ import annotations

from savin.web.console.parts import Part

__all__ = ["ReportsPart"]


class ReportsPart(Part):
    pass
