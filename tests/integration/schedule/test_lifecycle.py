"""scheduled → live → ended, driven by joins (on_joined/on_left) and the clock."""

from __future__ import annotations

from datetime import datetime

from .conftest import CST, Env


def at(env: Env, hour: int, minute: int = 0, day: int = 23) -> None:
    env.clock.set(datetime(2026, 11, day, hour, minute, tzinfo=CST))


async def status_of(env: Env, lesson_id: str, date: str | None = None) -> str:
    params = {"date": date} if date else None
    code, live = await env.call("GET", f"/api/lessons/{lesson_id}/live", params=params)
    assert code == 200, live
    return str(live["status"])


async def test_join_makes_live_and_last_leave_after_end_ends(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    lid = lesson["id"]
    assert await status_of(env, lid) == "scheduled"
    at(env, 8, 50)
    env.store.on_joined(lid, env.ids["lead"])
    env.store.on_joined(lid, env.ids["r1"])
    assert await status_of(env, lid) == "live"
    at(env, 9, 20)
    env.store.on_left(lid, env.ids["r1"])  # a drop during the lesson: still live
    env.store.on_joined(lid, env.ids["r1"])
    env.store.on_joined(lid, env.ids["r1"])  # replaced session: one open record
    assert env.store.connected_from_history(lid) == sorted([env.ids["lead"], env.ids["r1"]])
    at(env, 9, 46)
    env.store.on_left(lid, env.ids["r1"])
    assert await status_of(env, lid) == "live"
    env.store.on_left(lid, env.ids["lead"])
    assert await status_of(env, lid) == "ended"
    _, live = await env.call("GET", f"/api/lessons/{lid}/live")
    assert live["started_at"] == "2026-11-23T08:50:00+08:00"
    assert live["ended_at"] == "2026-11-23T09:46:00+08:00"
    assert [h["classroom_id"] for h in live["history"]] == [
        env.ids["lead"],
        env.ids["r1"],
        env.ids["r1"],
        env.ids["r1"],
    ]
    assert all(h["left_at"] is not None for h in live["history"])


async def test_all_leave_before_end_stays_live_then_clock_ends_it(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    lid = lesson["id"]
    at(env, 9)
    env.store.on_joined(lid, env.ids["lead"])
    at(env, 9, 10)
    env.store.on_left(lid, env.ids["lead"])
    assert await status_of(env, lid) == "live"
    at(env, 10, 15)
    assert await status_of(env, lid) == "live"
    at(env, 10, 16)
    assert await status_of(env, lid) == "ended"


async def test_nobody_came(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    at(env, 10)
    assert await status_of(env, lesson["id"]) == "scheduled"  # still joinable
    at(env, 11)
    assert await status_of(env, lesson["id"]) == "ended"


async def test_recurring_occurrences_have_their_own_lifecycle(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body(recurrence={"until": "2026-12-21"}))
    lid = lesson["id"]
    at(env, 9, 0, day=30)
    env.store.on_joined(f"{lid}@2026-11-30", env.ids["lead"])
    env.live.rooms[f"{lid}@2026-11-30"] = [env.ids["lead"]]
    assert await status_of(env, lid, "2026-11-30") == "live"
    assert await status_of(env, lid, "2026-11-23") == "ended"
    assert await status_of(env, lid, "2026-12-07") == "scheduled"
    # default occurrence: the current one
    _, live = await env.call("GET", f"/api/lessons/{lid}/live")
    assert live["occurrence_id"] == f"{lid}@2026-11-30" and live["connected"] == [env.ids["lead"]]
    _, occs = await env.call("GET", f"/api/lessons/{lid}/occurrences")
    assert [o["status"] for o in occs["occurrences"]] == [
        "ended",
        "live",
        "scheduled",
        "scheduled",
        "scheduled",
    ]
    # cancelling a begun occurrence is refused
    code, body = await env.call("POST", f"/api/lessons/{lid}/cancel", {"date": "2026-11-30"})
    assert code == 409 and body["error"]["code"] == "occurrence_started"
