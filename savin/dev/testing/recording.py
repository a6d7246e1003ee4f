"""What a local peer received, kept for tests that read it from another thread."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

__all__ = ["Recorder"]

T = TypeVar("T")


class Recorder(Generic[T]):
    """Accepted items (``messages``) plus named side lists, all behind one lock."""

    def __init__(self, *extra: str):
        self._lock = threading.Lock()
        self._messages: list[T] = []
        self._lists: dict[str, list] = {name: [] for name in extra}

    def _record(self, item: T) -> None:
        with self._lock:
            self._messages.append(item)

    def _note(self, name: str, item) -> None:
        with self._lock:
            self._lists[name].append(item)

    def _copy(self, name: str) -> list:
        with self._lock:
            return list(self._lists[name])

    @property
    def messages(self) -> list[T]:
        with self._lock:
            return list(self._messages)

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            for items in self._lists.values():
                items.clear()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """Block until at least ``n`` messages were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        while len(self._messages) < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
