"""Logging for the worker and the web: text or JSON lines, repeated lines held back.

:func:`configure_logging` sets up both processes alike from the settings:
``SAVIN_LOG_FORMAT=text`` (the default) gives ``[time] [pid] [LEVEL] message``
lines, ``SAVIN_LOG_FORMAT=json`` one JSON object per line (:class:`JsonFormatter`)
for a log collector. Either way the lines carry ids only, never personal data:
that is the rule for every message savin logs.

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

import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING

from savin import metrics

if TYPE_CHECKING:
    from savin.settings import Settings

__all__ = ["RepeatFilter", "install_repeat_filter", "LOGGERS", "JsonFormatter", "configure_logging",
           "TEXT_FORMAT", "REPEAT_INTERVAL"]

#: The text format's lines: the worker's as mode wrote them (``[time] [pid] [LEVEL] message``),
#: for the web too; the JSON lines name the logger.
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
#: Seconds between lines of one repeated message template.
REPEAT_INTERVAL = 60.0

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


#: Attributes every LogRecord has; anything else on a record came in ``extra=``.
#: (uvicorn adds ``color_message``, the message again with terminal colours.)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message", _VERDICT}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (RFC 3339, UTC), ``level``, ``logger``,
    ``message``, ``exception`` when the record has one, and the record's ``extra=``
    values (ids, by savin's rule), as JSON or as text."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
                      .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        return json.dumps(line, ensure_ascii=False)


def _formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> RepeatFilter:
    """The root logger's one handler, on stderr, in ``settings.log_format`` at
    ``settings.log_level``, with the repeat filter on it (and on :data:`LOGGERS`).

    Warnings go through logging too (``py.warnings``), and in the JSON format an
    exception nobody caught is logged as a record, so every line on stderr is
    one of the format's. Calling it again replaces the handler.
    """
    level = settings.log_level.upper()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter(settings.log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("savin").setLevel(level)
    logging.captureWarnings(True)
    if settings.log_format == "json":
        sys.excepthook = _log_uncaught
        threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)
    for name in LOGGERS:
        for old in [f for f in logging.getLogger(name).filters if isinstance(f, RepeatFilter)]:
            logging.getLogger(name).removeFilter(old)
    return install_repeat_filter(REPEAT_INTERVAL)


def _log_uncaught(exc_type, exc_value, traceback) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, traceback)
        return
    logging.getLogger("savin").critical("uncaught %s", exc_type.__name__, exc_info=(exc_type, exc_value, traceback))
