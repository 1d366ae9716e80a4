"""Pure scheduling logic: time parsing, weekly expansion, overlaps and token windows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .models import Occurrence, Recurrence

# Token validity relative to an occurrence: from 15 minutes before its start to 30 after its end.
JOIN_BEFORE_S = 15 * 60
JOIN_AFTER_S = 30 * 60
MAX_LESSON_S = 12 * 3600
MAX_TERM_DAYS = 400
WEEK = timedelta(days=7)

_LESSON_ID = re.compile(r"^(les_[0-9a-f]{12})(?:@(\d{4}-\d{2}-\d{2}))?$")


class TimeError_(ValueError):
    """A time value a client sent that cannot be used (message is client-facing)."""


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        if name in ("Asia/Shanghai", "Asia/Chongqing", "PRC"):
            return timezone(timedelta(hours=8), name)
        if name == "UTC":
            return UTC
        raise TimeError_(f"unknown time zone {name!r}") from exc


def valid_zone(name: str) -> bool:
    try:
        zone(name)
    except TimeError_:
        return False
    return True


def parse_time(value: object, tz: tzinfo, field: str) -> float:
    """ISO 8601 date-time; without an offset it is taken in the bureau's zone."""
    if not isinstance(value, str) or not value:
        raise TimeError_(f"{field} must be an ISO 8601 date-time string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimeError_(f"{field} is not a valid ISO 8601 date-time: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    if not 2000 <= dt.year <= 2100:
        raise TimeError_(f"{field} must be between the years 2000 and 2100")
    return dt.timestamp()


def parse_date(value: object, field: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise TimeError_(f"{field} must be a date YYYY-MM-DD")
    try:
        d = date.fromisoformat(value)
    except ValueError as exc:
        raise TimeError_(f"{field} is not a valid date: {value!r}") from exc
    if not 2000 <= d.year <= 2100:
        raise TimeError_(f"{field} must be between the years 2000 and 2100")
    return d


def format_time(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def local_date(ts: float, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ts, tz).date()


def day_bounds(day: date, tz: tzinfo) -> tuple[float, float]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start.timestamp(), end.timestamp()


def week_bounds(day: date, tz: tzinfo) -> tuple[date, float, float]:
    """Monday of ``day``'s week and the [start, end) of that week in unix seconds."""
    monday = day - timedelta(days=day.weekday())
    start, _ = day_bounds(monday, tz)
    _, end = day_bounds(monday + timedelta(days=6), tz)
    return monday, start, end


def occurrence_id(lesson_id: str, day: date | None) -> str:
    return lesson_id if day is None else f"{lesson_id}@{day.isoformat()}"


def split_occurrence_id(value: str) -> tuple[str, date | None] | None:
    """``(lesson_id, date or None)`` for ids the schedule issues; ``None`` for anything else
    (e.g. the demo lesson ``demo-...``), which the schedule does not govern."""
    m = _LESSON_ID.match(value)
    if not m:
        return None
    if m.group(2) is None:
        return m.group(1), None
    try:
        return m.group(1), date.fromisoformat(m.group(2))
    except ValueError:
        return m.group(1), date(1970, 1, 1)  # well-formed id, impossible date: never an occurrence


def expand(
    lesson_id: str,
    start: float,
    end: float,
    recurrence: Recurrence | None,
    tz: tzinfo,
) -> list[Occurrence]:
    """All occurrences of a lesson, in order. A weekly lesson repeats at the same bureau-local
    wall-clock time every 7 days from its first start up to ``until``, skipping exceptions."""
    if recurrence is None:
        return [Occurrence(lesson_id, lesson_id, local_date(start, tz), start, end)]
    first = datetime.fromtimestamp(start, tz)
    duration = end - start
    skip = set(recurrence.exceptions)
    out: list[Occurrence] = []
    day = first.date()
    while day <= recurrence.until:
        if day not in skip:
            local = datetime.combine(day, first.time(), tzinfo=tz)
            s = local.timestamp()
            out.append(Occurrence(lesson_id, occurrence_id(lesson_id, day), day, s, s + duration))
        day += WEEK
    return out


def span(occurrences: Sequence[Occurrence]) -> tuple[float, float] | None:
    if not occurrences:
        return None
    return occurrences[0].start, max(o.end for o in occurrences)


def overlaps(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    """Half-open intervals: a lesson ending at 9:00 and one starting at 9:00 do not overlap."""
    return a_start < b_end and b_start < a_end


def first_overlap(a: Iterable[Occurrence], b: Iterable[Occurrence]) -> tuple[Occurrence, Occurrence] | None:
    """The earliest overlapping pair of two occurrence lists (each sorted by start)."""
    xs = sorted(a, key=lambda o: o.start)
    ys = sorted(b, key=lambda o: o.start)
    i = j = 0
    while i < len(xs) and j < len(ys):
        x, y = xs[i], ys[j]
        if overlaps(x.start, x.end, y.start, y.end):
            return x, y
        if x.end <= y.end:
            i += 1
        else:
            j += 1
    return None


def token_window(occ: Occurrence) -> tuple[float, float]:
    """When a join token for this occurrence is valid: ``(not_before, expires)``."""
    return occ.start - JOIN_BEFORE_S, occ.end + JOIN_AFTER_S
