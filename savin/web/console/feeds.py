"""The console's and the API's feeds: Each source's freshness, as the feed watchdog judges it."""

from __future__ import annotations

from savin.web.console.parts import Part

__all__ = ["FeedsPart"]


class FeedsPart(Part):
    pass
