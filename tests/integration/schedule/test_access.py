"""A bureau sees and changes only its own schools, classrooms, teachers and lessons."""

from __future__ import annotations

from .conftest import Env


async def test_cross_bureau_reads_and_writes_are_refused(env: Env, other_bureau: dict[str, str]) -> None:
    key_b = other_bureau["key"]
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    lid = lesson["id"]

    # B sees none of A's things
    for path in ("/api/schools", "/api/classrooms", "/api/teachers", "/api/lessons"):
        code, body = await env.call("GET", path, key=key_b)
        assert code == 200
        listed = next(iter(body.values()))
        assert all(x["id"] not in env.ids.values() and x["id"] != lid for x in listed), path
    code, week = await env.call("GET", "/api/schedule/week", key=key_b)
    assert week["occurrences"] == []
    code, today = await env.call("GET", "/api/schedule/today", key=key_b)
    assert today["occurrences"] == []

    for method, path in (
        ("GET", f"/api/lessons/{lid}"),
        ("GET", f"/api/lessons/{lid}/links"),
        ("GET", f"/api/lessons/{lid}/live"),
        ("GET", f"/api/lessons/{lid}/occurrences"),
        ("POST", f"/api/lessons/{lid}/cancel"),
        ("PATCH", f"/api/lessons/{lid}"),
        ("GET", f"/api/schools/{env.ids['rural']}"),
        ("GET", f"/api/classrooms/{env.ids['r1']}"),
    ):
        body_json = {"title": "hijacked"} if method == "PATCH" else None
        code, body = await env.call(method, path, body_json, key=key_b)
        assert code == 404 and body["error"]["code"] == "not_found", (method, path, body)
    code, body = await env.call("PUT", f"/api/lessons/{lid}", env.lesson_body(title="hijacked"), key=key_b)
    assert code == 404

    # B cannot use A's classrooms, schools or teachers in its own lessons
    code, body = await env.call(
        "POST",
        "/api/lessons",
        env.lesson_body(lead_classroom_id=other_bureau["classroom"], lead_teacher_id=None),
        key=key_b,
    )
    assert code == 400 and body["error"]["code"] == "unknown_classroom"
    code, body = await env.call("POST", "/api/classrooms", {"school_id": env.ids["rural"], "name": "x"}, key=key_b)
    assert code == 400 and body["error"]["code"] == "unknown_school"
    code, body = await env.call("POST", "/api/teachers", {"school_id": env.ids["rural"], "name": "x"}, key=key_b)
    assert code == 400
    code, body = await env.call("GET", "/api/schedule/week", params={"school_id": env.ids["rural"]}, key=key_b)
    assert code == 404

    # and A's lesson is untouched
    code, same = await env.call("GET", f"/api/lessons/{lid}")
    assert same == lesson


async def test_each_bureau_schedules_its_own(env: Env, other_bureau: dict[str, str]) -> None:
    key_b = other_bureau["key"]
    code, room2 = await env.call(
        "POST",
        "/api/classrooms",
        {"school_id": other_bureau["school"], "name": "B remote"},
        key=key_b,
    )
    code, lesson_b = await env.call(
        "POST",
        "/api/lessons",
        {
            "subject": "English",
            "title": "B lesson",
            "lead_classroom_id": other_bureau["classroom"],
            "remote_classroom_ids": [room2["id"]],
            "start": "2026-11-23T09:00:00",
            "end": "2026-11-23T09:45:00",
        },
        key=key_b,
    )
    assert code == 201, lesson_b
    code, me = await env.call("GET", "/api/me", key=key_b)
    assert me["bureau"]["id"] == other_bureau["bureau"]
    code, lessons_a = await env.call("GET", "/api/lessons")
    assert lessons_a["lessons"] == []
    code, _ = await env.call("GET", f"/api/lessons/{lesson_b['id']}")
    assert code == 404
