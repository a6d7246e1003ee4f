"""Quiet hours, as pure rules: in or out, and when they end, across midnight and
daylight saving time."""

from __future__ import annotations

import datetime as dt

import pytest

from savin.domain.quiet import in_quiet_hours, quiet_hours_end
from savin.schemas.registration import QuietHours

UTC = dt.timezone.utc
CHICAGO = "America/Chicago"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize("local, quiet, expected_end", [
    # Default 21:00 to 08:00 in Chicago (CST, UTC-6 in December).
    ("2026-12-03T20:59:00-06:00", None, None),
    ("2026-12-03T21:00:00-06:00", None, "2026-12-04T08:00:00-06:00"),
    ("2026-12-04T03:00:00-06:00", None, "2026-12-04T08:00:00-06:00"),
    ("2026-12-04T07:59:00-06:00", None, "2026-12-04T08:00:00-06:00"),
    ("2026-12-04T08:00:00-06:00", None, None),
    # Within one day.
    ("2026-12-03T13:30:00-06:00", QuietHours(start="13:00", end="15:00"), "2026-12-03T15:00:00-06:00"),
    ("2026-12-03T15:00:00-06:00", QuietHours(start="13:00", end="15:00"), None),
    # The night clocks go back (1 November 2026): 08:00 is CST.
    ("2026-10-31T22:00:00-05:00", None, "2026-11-01T08:00:00-06:00"),
    # The night clocks go forward (14 March 2027): 08:00 is CDT.
    ("2027-03-13T22:00:00-06:00", None, "2027-03-14T08:00:00-05:00"),
])
def test_quiet_hours_and_their_end(local, quiet, expected_end):
    now = at(local)
    assert in_quiet_hours(quiet, CHICAGO, now) is (expected_end is not None)
    assert quiet_hours_end(quiet, CHICAGO, now) == (at(expected_end) if expected_end else None)


def test_an_end_in_the_skipped_spring_hour_comes_that_hour_later():
    quiet = QuietHours(start="23:00", end="02:30")  # 02:30 does not exist on 14 March 2027 in Chicago
    assert quiet_hours_end(quiet, CHICAGO, at("2027-03-14T01:00:00-06:00")) == at("2027-03-14T03:30:00-05:00")


def test_the_zone_is_the_registrations_own():
    now = at("2026-12-04T04:30:00+00:00")  # 22:30 in Chicago, 20:30 in Los Angeles
    assert in_quiet_hours(None, CHICAGO, now)
    assert not in_quiet_hours(None, "America/Los_Angeles", now)
