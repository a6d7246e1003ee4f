"""``savin feeds``: each source's freshness, as the feed watchdog judges it."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``savin feeds`` to ``app``."""
