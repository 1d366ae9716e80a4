"""Double bookings: a classroom or a teacher in two lessons at overlapping times → 409."""

from __future__ import annotations

from typing import Any

from .conftest import Env

WEEKLY = {"until": "2027-01-18"}


async def create(env: Env, **over: Any) -> tuple[int, Any]:
    return await env.call("POST", "/api/lessons", env.lesson_body(**over))


def other_rooms(env: Env) -> dict[str, Any]:
    """A lesson sharing nothing with the default body."""
    return {
        "lead_classroom_id": env.ids["lead2"],
        "lead_teacher_id": env.ids["teacher2"],
        "remote_classroom_ids": [env.ids["r3"]],
    }


async def test_same_remote_classroom_overlapping_is_refused(env: Env) -> None:
    status, first = await create(env)
    assert status == 201
    status, body = await create(
        env,
        title="Physics",
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        remote_classroom_ids=[env.ids["r3"], env.ids["r2"]],
        start="2026-11-23T09:30:00+08:00",
        end="2026-11-23T10:15:00+08:00",
    )
    assert status == 409, body
    err = body["error"]
    assert err["code"] == "conflict"
    assert first["id"] in err["message"] and "Fractions" in err["message"]
    (c,) = err["conflicts"]
    assert c["lesson_id"] == first["id"] and c["occurrence_id"] == first["id"]
    assert c["resources"] == [{"type": "classroom", "id": env.ids["r2"]}]
    assert c["start"] == "2026-11-23T09:00:00+08:00"


async def test_lead_classroom_used_as_remote_elsewhere_is_refused(env: Env) -> None:
    await create(env)
    status, body = await create(
        env,
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        remote_classroom_ids=[env.ids["lead"]],
    )
    assert status == 409 and body["error"]["conflicts"][0]["resources"] == [
        {"type": "classroom", "id": env.ids["lead"]}
    ]


async def test_same_teacher_overlapping_is_refused(env: Env) -> None:
    await create(env)
    status, body = await create(
        env,
        lead_classroom_id=env.ids["lead2"],
        remote_classroom_ids=[env.ids["r3"]],
        start="2026-11-23T08:30:00+08:00",
        end="2026-11-23T09:01:00+08:00",
    )
    assert status == 409
    assert body["error"]["conflicts"][0]["resources"] == [{"type": "teacher", "id": env.ids["teacher"]}]


async def test_back_to_back_and_disjoint_are_fine(env: Env) -> None:
    assert (await create(env))[0] == 201
    status, _ = await create(env, start="2026-11-23T09:45:00+08:00", end="2026-11-23T10:30:00+08:00")
    assert status == 201
    status, _ = await create(env, **other_rooms(env))
    assert status == 201


async def test_recurring_against_one_off_in_a_later_week(env: Env) -> None:
    status, weekly = await create(env, recurrence=WEEKLY)
    assert status == 201
    status, body = await create(
        env,
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        start="2026-12-14T09:10:00+08:00",
        end="2026-12-14T09:20:00+08:00",
    )
    assert status == 409
    assert body["error"]["conflicts"][0]["occurrence_id"] == f"{weekly['id']}@2026-12-14"
    # the day after is free, and so is the week after the term
    for start, end in (
        ("2026-12-15T09:10:00+08:00", "2026-12-15T09:20:00+08:00"),
        ("2027-01-25T09:10:00+08:00", "2027-01-25T09:20:00+08:00"),
    ):
        status, _ = await create(
            env,
            lead_classroom_id=env.ids["lead2"],
            lead_teacher_id=env.ids["teacher2"],
            start=start,
            end=end,
        )
        assert status == 201


async def test_recurring_against_recurring(env: Env) -> None:
    await create(env, recurrence={"until": "2027-01-18"})
    # starts weeks later but its Mondays hit the first series
    status, body = await create(
        env,
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        start="2027-01-04T09:40:00+08:00",
        end="2027-01-04T10:20:00+08:00",
        recurrence={"until": "2027-03-01"},
    )
    assert status == 409
    assert body["error"]["conflicts"][0]["occurrence_id"].endswith("@2027-01-04")
    # a series on Tuesdays does not collide
    status, _ = await create(
        env,
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        start="2026-11-24T09:00:00+08:00",
        end="2026-11-24T10:00:00+08:00",
        recurrence={"until": "2027-03-01"},
    )
    assert status == 201


async def test_exception_day_frees_the_slot(env: Env) -> None:
    status, weekly = await create(env, recurrence=WEEKLY)
    one_off = {
        "lead_classroom_id": env.ids["lead2"],
        "lead_teacher_id": env.ids["teacher2"],
        "start": "2026-12-07T09:00:00+08:00",
        "end": "2026-12-07T09:45:00+08:00",
    }
    assert (await create(env, **one_off))[0] == 409
    status, _ = await env.call("POST", f"/api/lessons/{weekly['id']}/cancel", {"date": "2026-12-07"})
    assert status == 200
    assert (await create(env, **one_off))[0] == 201


async def test_cancelled_lesson_frees_the_slot(env: Env) -> None:
    _, first = await create(env)
    assert (await create(env))[0] == 409
    await env.call("POST", f"/api/lessons/{first['id']}/cancel")
    assert (await create(env))[0] == 201


async def test_update_does_not_conflict_with_itself_but_with_others(env: Env) -> None:
    _, a = await create(env)
    _, b = await create(env, **other_rooms(env), start="2026-11-23T10:00:00+08:00", end="2026-11-23T10:45:00+08:00")
    status, _ = await env.call("PATCH", f"/api/lessons/{a['id']}", {"end": "2026-11-23T09:50:00+08:00"})
    assert status == 200
    status, body = await env.call("PATCH", f"/api/lessons/{b['id']}", {"start": "2026-11-23T09:30:00+08:00"})
    assert status == 200  # b shares nothing with a
    status, body = await env.call("PATCH", f"/api/lessons/{b['id']}", {"remote_classroom_ids": [env.ids["r1"]]})
    assert status == 409 and body["error"]["conflicts"][0]["lesson_id"] == a["id"]
    status, still = await env.call("GET", f"/api/lessons/{b['id']}")
    assert still["remote_classroom_ids"] == [env.ids["r3"]]  # refused update changed nothing


async def test_lists_every_conflicting_lesson(env: Env) -> None:
    _, a = await create(env, remote_classroom_ids=[env.ids["r1"]])
    _, b = await create(
        env,
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        remote_classroom_ids=[env.ids["r2"]],
    )
    status, body = await create(
        env,
        lead_classroom_id=env.ids["r3"],
        lead_teacher_id=None,
        remote_classroom_ids=[env.ids["r1"], env.ids["r2"]],
    )
    assert status == 409
    assert {c["lesson_id"] for c in body["error"]["conflicts"]} == {a["id"], b["id"]}
