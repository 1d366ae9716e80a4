"""Pure scheduling logic: parsing, weekly expansion, overlaps, occurrence ids, token windows."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.schedule.models import Occurrence, Recurrence
from signaling.schedule.timing import (
    JOIN_AFTER_S,
    JOIN_BEFORE_S,
    TimeError_,
    day_bounds,
    expand,
    first_overlap,
    format_time,
    occurrence_id,
    overlaps,
    parse_date,
    parse_time,
    split_occurrence_id,
    token_window,
    week_bounds,
    zone,
)

SH = zone("Asia/Shanghai")
CST = timezone(timedelta(hours=8))
LID = "les_0123456789ab"


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=CST).timestamp()


def test_parse_time_with_offset_naive_and_z() -> None:
    assert parse_time("2026-11-23T09:00:00+08:00", SH, "start") == ts(2026, 11, 23, 9)
    assert parse_time("2026-11-23T09:00:00", SH, "start") == ts(2026, 11, 23, 9)
    assert parse_time("2026-11-23T01:00:00Z", SH, "start") == ts(2026, 11, 23, 9)


@pytest.mark.parametrize("bad", ["", "tomorrow", "2026-13-01T00:00:00", 12, None, "1850-01-01T00:00"])
def test_parse_time_refuses(bad: object) -> None:
    with pytest.raises(TimeError_):
        parse_time(bad, SH, "start")


@pytest.mark.parametrize("bad", ["2026-02-30", "26-1-1", "x", 5, "2026-1-01"])
def test_parse_date_refuses(bad: object) -> None:
    with pytest.raises(TimeError_):
        parse_date(bad, "date")


def test_format_time_uses_zone() -> None:
    assert format_time(ts(2026, 11, 23, 9), SH) == "2026-11-23T09:00:00+08:00"


def test_one_off_expansion() -> None:
    (occ,) = expand(LID, ts(2026, 11, 23, 9), ts(2026, 11, 23, 10), None, SH)
    assert occ.occurrence_id == LID
    assert occ.date == date(2026, 11, 23)


def test_weekly_expansion_with_exceptions() -> None:
    rec = Recurrence(until=date(2026, 12, 21), exceptions=(date(2026, 12, 7),))
    occs = expand(LID, ts(2026, 11, 23, 9), ts(2026, 11, 23, 9, 45), rec, SH)
    assert [o.date for o in occs] == [
        date(2026, 11, 23),
        date(2026, 11, 30),
        date(2026, 12, 14),
        date(2026, 12, 21),
    ]
    assert occs[1].occurrence_id == f"{LID}@2026-11-30"
    assert all(o.end - o.start == 45 * 60 for o in occs)
    assert occs[3].start == ts(2026, 12, 21, 9)


def test_weekly_keeps_wall_clock_across_dst() -> None:
    berlin = zone("Europe/Berlin")
    start = datetime(2026, 3, 23, 9, tzinfo=berlin).timestamp()
    rec = Recurrence(until=date(2026, 4, 6))
    occs = expand(LID, start, start + 3600, rec, berlin)
    assert [datetime.fromtimestamp(o.start, berlin).hour for o in occs] == [9, 9, 9]
    assert occs[2].start - occs[0].start == 14 * 86400 - 3600  # DST began on 29 March


def test_until_before_start_gives_nothing() -> None:
    assert expand(LID, ts(2026, 11, 23, 9), ts(2026, 11, 23, 10), Recurrence(date(2026, 11, 1)), SH) == []


def test_overlaps_half_open() -> None:
    assert overlaps(0, 10, 5, 15)
    assert overlaps(0, 10, 2, 3)
    assert not overlaps(0, 10, 10, 20)
    assert not overlaps(10, 20, 0, 10)


def _occ(start: float, end: float) -> Occurrence:
    return Occurrence(LID, LID, date(2026, 1, 1), start, end)


def test_first_overlap_finds_pair_in_series() -> None:
    a = [_occ(0, 10), _occ(100, 110), _occ(200, 210)]
    b = [_occ(50, 60), _occ(205, 215)]
    pair = first_overlap(a, b)
    assert pair is not None and pair[0].start == 200 and pair[1].start == 205
    assert first_overlap(a, [_occ(10, 100), _occ(110, 200)]) is None


@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 50)), max_size=8),
    st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 50)), max_size=8),
)
def test_first_overlap_matches_brute_force(xs: list[tuple[int, int]], ys: list[tuple[int, int]]) -> None:
    def series(raw: list[tuple[int, int]]) -> list[Occurrence]:
        # non-overlapping within one lesson, like real weekly occurrences
        out: list[Occurrence] = []
        t = 0
        for gap, length in raw:
            out.append(_occ(t + gap, t + gap + length))
            t += gap + length
        return out

    a, b = series(xs), series(ys)
    brute = any(overlaps(x.start, x.end, y.start, y.end) for x in a for y in b)
    assert (first_overlap(a, b) is not None) == brute


def test_occurrence_ids_round_trip() -> None:
    assert split_occurrence_id(occurrence_id(LID, None)) == (LID, None)
    assert split_occurrence_id(occurrence_id(LID, date(2026, 11, 30))) == (LID, date(2026, 11, 30))
    assert split_occurrence_id("demo-lesson") is None
    assert split_occurrence_id("les_xyz") is None
    assert split_occurrence_id(f"{LID}@2026-02-31") == (LID, date(1970, 1, 1))


def test_token_window_defaults() -> None:
    occ = _occ(1000.0, 4000.0)
    assert token_window(occ) == (1000.0 - JOIN_BEFORE_S, 4000.0 + JOIN_AFTER_S)
    assert JOIN_BEFORE_S == 15 * 60 and JOIN_AFTER_S == 30 * 60


def test_day_and_week_bounds() -> None:
    start, end = day_bounds(date(2026, 11, 25), SH)
    assert start == ts(2026, 11, 25, 0) and end == ts(2026, 11, 26, 0)
    monday, ws, we = week_bounds(date(2026, 11, 26), SH)
    assert monday == date(2026, 11, 23)
    assert ws == ts(2026, 11, 23, 0) and we == ts(2026, 11, 30, 0)


def test_unknown_zone() -> None:
    with pytest.raises(TimeError_):
        zone("Mars/Olympus")
