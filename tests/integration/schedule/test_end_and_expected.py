"""What the signaling asks the schedule about a live lesson: which remote classrooms it expects
(the lead page lists the absent ones) and that the lead ended it (its links stop joining)."""

from __future__ import annotations

from datetime import datetime

import pytest

from signaling.tokens import TokenClaims, TokenError

from .conftest import CST, Env


async def test_expected_classrooms_in_the_lessons_order(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    expected = env.store.expected_classrooms(lesson["id"])
    assert expected is not None
    assert [c["classroom_id"] for c in expected] == [env.ids["r1"], env.ids["r2"]]
    assert all(c["name"] and c["name"] != c["classroom_id"] for c in expected)
    assert env.store.expected_classrooms("demo-lesson") is None  # not the schedule's


async def test_ended_by_the_lead_refuses_new_joins(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    lid = lesson["id"]
    env.clock.set(datetime(2026, 11, 23, 9, 5, tzinfo=CST))
    now = env.clock()
    claims = TokenClaims(lid, env.ids["r1"], "remote", "r1", now - 60, now + 3600)
    env.store.admit(claims)  # open
    env.store.on_joined(lid, env.ids["lead"])
    env.store.end_occurrence(lid)
    _, live = await env.call("GET", f"/api/lessons/{lid}/live")
    assert live["status"] == "ended"
    with pytest.raises(TokenError) as caught:
        env.store.admit(claims)
    assert caught.value.code == "lesson_unavailable"
    env.store.end_occurrence("demo-lesson")  # a room the schedule never issued: nothing to do
