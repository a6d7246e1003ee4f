"""Logging set up from the settings: text or JSON lines on stderr, ids only,
repeated lines held back in either format; and a real worker whose every line
is a JSON object when SAVIN_LOG_FORMAT=json."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import warnings

import pytest
from support import event, eventually, phone, registration

from savin.dev.testing.fake_twilio import FakeTwilio
from savin.logs import JsonFormatter, configure_logging
from savin.settings import Settings

KEYS = {"time", "level", "logger", "message"}


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {name: list(logging.getLogger(name).filters) for name in ("savin", "aiokafka", "faust", "mode")}
    savin_level = logging.getLogger("savin").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, kept in filters.items():
        logging.getLogger(name).filters[:] = kept
    logging.getLogger("savin").setLevel(savin_level)
    logging.captureWarnings(False)


def _settings(**values) -> Settings:
    return Settings.model_construct(**{**{k: f.default for k, f in Settings.model_fields.items()}, **values})


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def _is_utc_rfc3339(text: str) -> bool:
    return text.endswith("Z") and dt.datetime.fromisoformat(text).utcoffset() == dt.timedelta(0)


def test_a_json_line_has_the_time_in_utc_the_level_the_logger_and_the_message():
    record = logging.LogRecord("savin.deliver", logging.WARNING, __file__, 1, "sent notice=%s", ("N-1",), None)
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == KEYS
    assert line["level"] == "WARNING" and line["logger"] == "savin.deliver" and line["message"] == "sent notice=N-1"
    assert _is_utc_rfc3339(line["time"])


def test_a_json_line_carries_the_exception_and_the_extra_ids():
    try:
        raise ValueError("notice N-2 unreadable")
    except ValueError:
        record = logging.LogRecord("savin", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    record.notice_id = "N-2"
    record.attempt = 3
    record.when = dt.date(2026, 1, 2)
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: notice N-2 unreadable" in line["exception"] and "Traceback" in line["exception"]
    assert line["notice_id"] == "N-2" and line["attempt"] == 3 and line["when"] == "2026-01-02"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configure_logging_holds_repeats_back_in_either_format(restore_logging, log_format):
    stream = io.StringIO()
    configure_logging(_settings(log_format=log_format, log_level="info"), stream=stream)
    log = logging.getLogger("savin.test.logs")
    for _ in range(5):
        log.warning("broker %s unreachable", "b-1")
    log.info("sent notice=%s", "N-3")
    log.debug("not shown")
    lines = _lines(stream)
    assert len(lines) == 2, lines
    if log_format == "json":
        parsed = [json.loads(line) for line in lines]
        assert [p["message"] for p in parsed] == ["broker b-1 unreachable", "sent notice=N-3"]
        assert all(set(p) == KEYS for p in parsed)
    else:
        assert re.fullmatch(r"\[[^\]]+\] \[\d+\] \[WARNING\] broker b-1 unreachable", lines[0]), lines


def test_configure_logging_again_replaces_the_handler_and_warnings_are_lines_too(restore_logging):
    configure_logging(_settings(log_format="text"), stream=io.StringIO())
    stream = io.StringIO()
    configure_logging(_settings(log_format="json", log_level="warning"), stream=stream)
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("savin.test.logs").info("below the level")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
    (line,) = [json.loads(line) for line in _lines(stream)]
    assert line["logger"] == "py.warnings" and "a library's deprecation" in line["message"]


@pytest.mark.e2e
async def test_a_worker_logging_json_writes_only_json_objects_with_ids(stack):
    failing = next(n for n, c in FakeTwilio.FAULT_NUMBERS.items() if c == 21211)
    worker = stack.start_worker(SAVIN_LOG_FORMAT="json", SAVIN_ESCALATION_CALL_SMS_PHONE="false")
    report = await stack.import_registrations([registration("R-LOG", "O-LOG", sms=phone(7)),
                                               registration("R-LOG-BAD", "O-LOG", sms=failing)])
    assert report.errors == []
    await stack.publish_events([json.dumps(event("RELEASED", "O-LOG"))])
    await eventually(lambda: len(stack.twilio.messages) >= 1, 60, "the text to be sent")
    await eventually(lambda: "R-LOG-BAD" in worker.tail(100_000), 30, "the failed send to be logged")
    assert worker.stop() == 0
    text = worker.log_path.read_text()
    lines = text.splitlines()
    assert len(lines) > 5
    for line in lines:
        parsed = json.loads(line)
        assert KEYS <= set(parsed), line
        assert _is_utc_rfc3339(parsed["time"]), line
    loggers = {json.loads(line)["logger"] for line in lines}
    assert any(name.startswith("savin") for name in loggers), loggers
    assert phone(7) not in text and failing not in text
    assert "Test Registrant" not in text and "Jonah Test Doe" not in text


@pytest.mark.e2e
async def test_savin_web_logging_json_writes_only_json_objects(stack):
    from savin.dev.testing.console_client import ConsoleClient

    web = stack.start_web(SAVIN_LOG_FORMAT="json")
    client = ConsoleClient(web.url)
    client.get("/console/login")
    assert client.post("/console/login", {"name": "nobody", "password": "a wrong password"}).status_code == 401
    await eventually(lambda: "login-failed" in web.tail(100_000), 30, "the failed sign-in to be logged")
    assert web.stop() in (0, -15)  # uvicorn raises SIGTERM again once it has shut down
    lines = web.log_path.read_text().splitlines()
    assert len(lines) >= 3
    for line in lines:
        parsed = json.loads(line)
        assert KEYS <= set(parsed) and _is_utc_rfc3339(parsed["time"]), line
    loggers = {json.loads(line)["logger"] for line in lines}
    assert any(name.startswith("uvicorn") for name in loggers) and "savin.web.console" in loggers, loggers
    assert "a wrong password" not in "\n".join(lines)
