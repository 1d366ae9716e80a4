"""The agent's schedule decisions with a fake clock (agent/schedule.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agent.schedule import Backoff, Join, Lesson, Planner, ScheduleError, Wait, parse_answer

CST = timezone(timedelta(hours=8))
START = datetime(2026, 12, 2, 9, 0, tzinfo=CST)
T0 = START.timestamp()


def answer(link: bool = True, start: datetime = START, minutes: int = 45, occ: str = "les_a") -> dict[str, object]:
    return {"device_id": "dev_1", "classroom_id": "cls_1", "lesson": {
        "occurrence_id": occ, "lesson_id": occ, "title": "数学", "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        "opens_at": (start - timedelta(minutes=15)).isoformat(),
        "link": {"role": "remote", "classroom_id": "cls_1", "token": "tok", "url": "http://x/remote.html?token=tok"}
        if link else None}}


def test_parse_the_documented_answer() -> None:
    lesson = parse_answer(answer())
    assert lesson == Lesson("les_a", "数学", T0, T0 + 2700, T0 - 900, "tok", "remote")
    assert parse_answer({"device_id": "d", "classroom_id": "c", "lesson": None}) is None
    assert parse_answer(answer(link=False)).token is None  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [
    [], {}, {"lesson": 3}, {"lesson": {"occurrence_id": "x"}},
    {"lesson": {"occurrence_id": "x", "start": "soon", "end": "later"}},
    {"lesson": {"occurrence_id": "x", "start": "2026-12-02T09:00:00", "end": "2026-12-02T10:00:00"}},  # no offset
    {"lesson": {"occurrence_id": "x", "start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T08:00:00+08:00"}},
    {"lesson": {"occurrence_id": "x", "start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T10:00:00+08:00",
                "link": {"role": "remote"}}},
])
def test_a_malformed_answer_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ScheduleError):
        parse_answer(bad)


def test_waits_until_the_start_minus_the_lead_time_then_joins() -> None:
    planner = Planner(lead_time_s=60, poll_s=30)
    lesson = parse_answer(answer())
    d = planner.decide(lesson, T0 - 600)
    assert isinstance(d, Wait) and d.until == T0 - 570  # asks again within the poll interval
    d = planner.decide(lesson, T0 - 75)
    assert isinstance(d, Wait) and d.until == T0 - 60  # wakes exactly at the join time
    assert planner.decide(lesson, T0 - 60) == Join(lesson)  # type: ignore[arg-type]
    assert planner.decide(lesson, T0 + 1200) == Join(lesson)  # type: ignore[arg-type]  # late: joins in progress


def test_never_before_the_join_window_opens() -> None:
    planner = Planner(lead_time_s=3600, poll_s=10_000)
    lesson = parse_answer(answer())
    d = planner.decide(lesson, T0 - 3000)
    assert isinstance(d, Wait) and d.until == T0 - 900


def test_no_link_in_the_window_asks_again_soon() -> None:
    planner = Planner(lead_time_s=0, poll_s=30)
    d = planner.decide(parse_answer(answer(link=False)), T0)
    assert isinstance(d, Wait) and d.until == T0 + 2


def test_a_lesson_left_at_its_end_is_not_joined_again() -> None:
    planner = Planner(lead_time_s=0, poll_s=30)
    lesson = parse_answer(answer())
    assert lesson is not None
    planner.finished(lesson)
    assert isinstance(planner.decide(lesson, T0 + 600), Wait)
    assert isinstance(planner.decide(lesson, T0 + 2700), Wait)  # over by the clock too
    after = parse_answer(answer(start=START + timedelta(hours=1), occ="les_b"))
    assert planner.decide(after, T0 + 3600) == Join(after)  # type: ignore[arg-type]


def test_no_lesson_polls() -> None:
    assert Planner(poll_s=30).decide(None, T0) == Wait(T0 + 30, "no lesson today")


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(first=0.5, cap=3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5
