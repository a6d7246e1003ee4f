"""Quiet hours: when a registration's routine notices wait.

Quiet hours are wall-clock times in the registration's time zone (default
21:00 to 08:00); a start after the end spans midnight. Urgent notices never
wait. Times are computed in the zone itself, so a change of daylight saving
time moves the end with the clock, and a quiet-hours end that falls in the
hour a spring-forward skips comes that hour later (02:30 becomes 03:30).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from savin.schemas.registration import QuietHours

__all__ = ["DEFAULT_QUIET_HOURS", "in_quiet_hours", "quiet_hours_end"]

DEFAULT_QUIET_HOURS = QuietHours()


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def in_quiet_hours(quiet: QuietHours | None, timezone: str, now: dt.datetime) -> bool:
    q = quiet or DEFAULT_QUIET_HOURS
    local = now.astimezone(zoneinfo.ZoneInfo(timezone)).time().replace(tzinfo=None)
    start, end = _clock(q.start), _clock(q.end)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(quiet: QuietHours | None, timezone: str, now: dt.datetime) -> dt.datetime | None:
    """When the quiet hours ``now`` is in end (UTC), or None when ``now`` is not in quiet hours."""
    if not in_quiet_hours(quiet, timezone, now):
        return None
    zone = zoneinfo.ZoneInfo(timezone)
    local = now.astimezone(zone)
    end = _clock((quiet or DEFAULT_QUIET_HOURS).end)
    day = local.date() if local.time().replace(tzinfo=None) < end else local.date() + dt.timedelta(days=1)
    # fold=0: an end in the hour a spring-forward skips (02:30) is read with the offset
    # before the change, which lands the same distance past it (03:30 by the new clock).
    return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.timezone.utc)
