"""The one error an operator's request answers with when what was asked cannot be done."""

from __future__ import annotations

__all__ = ["Problem"]


class Problem(ValueError):
    """An action refused for what was asked (not for who asked): ``field`` names the input."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
