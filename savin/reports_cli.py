"""``savin deadlines report`` and ``savin stats``: evidence of statutory deadlines met, and
program statistics with small cells suppressed."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``savin deadlines`` and ``savin stats`` to ``app``."""
