"""Logging for the worker: repeated lines are held back.

While Kafka or a provider is down, the clients and the stages say the same
thing many times a second: thousands of identical lines a minute, burying
everything else. :class:`RepeatFilter` lets the first
line of each message template through, then at most one line per interval,
which says how many were held back since the last one::

    Unable connect to node with id 1: ... (repeated 9319 times in the last 60 s)

Lines below ``level`` (by default INFO and DEBUG, which carry one notice's or
one batch's ids) always pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from savin import metrics

__all__ = ["RepeatFilter", "install_repeat_filter", "LOGGERS"]

#: Loggers the worker installs the filter on (the root's handlers see everything else).
LOGGERS = ("", "aiokafka", "savin", "faust", "mode")

_VERDICT = "_savin_repeat_verdict"


class RepeatFilter(logging.Filter):
    """Passes a message template's first record, then at most one per ``interval`` seconds.

    A template is the record's logger, level and unformatted message, so lines
    that differ only in their arguments count as repeats. The record that
    passes after others were held back carries their count. Safe to attach to
    several handlers and loggers at once: a record is judged once.
    """

    def __init__(self, interval: float = 60.0, level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic, max_templates: int = 10_000):
        super().__init__()
        self.interval = interval
        self.level = level
        self._clock = clock
        self._max = max_templates
        self._lock = threading.Lock()
        #: template -> (time the last line passed, records held back since)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, _VERDICT, None)
        if verdict is not None:
            return verdict
        verdict = self._judge(record)
        setattr(record, _VERDICT, verdict)
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                if len(self._seen) >= self._max:
                    self._seen.clear()  # bounded: an unbounded variety of templates starts over
                self._seen[key] = (now, 0)
                return True
            passed_at, held = seen
            if now - passed_at < self.interval:
                self._seen[key] = (passed_at, held + 1)
                metrics.LOG_LINES_SUPPRESSED.labels(logger=record.name).inc()
                return False
            self._seen[key] = (now, 0)
        if held:
            try:
                text = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is the handler's to report
                return True
            # Formatted here, once, so every handler shows the count.
            record.msg = f"{text} (repeated {held} times in the last {now - passed_at:.0f} s)"
            record.args = None
        return True


def install_repeat_filter(interval: float = 60.0, loggers: Iterable[str] = LOGGERS) -> RepeatFilter:
    """Attach one :class:`RepeatFilter` to the root logger's handlers and to ``loggers``.

    A logger's own filters see only the records made on that logger; the
    handlers' filters see every record that reaches them, children's included.
    """
    repeat = RepeatFilter(interval)
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeat)
    for name in loggers:
        logging.getLogger(name).addFilter(repeat)
    return repeat
