"""Every endpoint of the schedule API, its happy path and its refusals."""

from __future__ import annotations

import json
from typing import Any

from signaling.schedule.store import ScheduleStore

from .conftest import PUBLIC_URL, Env, StoreTarget


def assert_error(status: int, body: Any, want_status: int, code: str | None = None) -> None:
    assert status == want_status, body
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


async def test_openapi_served_without_auth(env: Env) -> None:
    resp = await env.client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/lessons/{lesson_id}/links" in doc["paths"]


async def test_me(env: Env) -> None:
    status, body = await env.call("GET", "/api/me")
    assert status == 200
    assert body["bureau"]["name"] == "Default bureau"
    assert body["bureau"]["timezone"] == "Asia/Shanghai"
    assert body["public_url"] == PUBLIC_URL


async def test_auth_required_and_checked(env: Env) -> None:
    resp = await env.client.get("/api/lessons")
    assert_error(resp.status, await resp.json(), 401, "unauthorized")
    status, body = await env.call("GET", "/api/lessons", key="cka_adm_000000000000.nope")
    assert_error(status, body, 401, "unauthorized")
    resp = await env.client.get("/api/lessons", headers={"X-API-Key": env.key})
    assert resp.status == 200
    admin = env.store.authenticate(env.key)
    assert admin is not None
    env.store.revoke_admin(admin.id)
    status, body = await env.call("GET", "/api/lessons")
    assert_error(status, body, 401)


async def test_keys_are_hashed_at_rest(env: Env) -> None:
    raw = env.where.stored_bytes()
    assert env.key.encode() not in raw
    assert env.key.split(".")[1].encode() not in raw


async def test_bootstrap_only_once(env: Env) -> None:
    assert env.store.ensure_bootstrap_admin() is None


def test_two_nodes_bootstrapping_one_fresh_database_at_once(store_target: StoreTarget) -> None:
    """Two nodes started together on one empty database: one bureau and one administrator are
    made, one node gets the key, neither fails (the clean-clone CI once lost a cluster node to
    'a bureau named 'Default bureau' exists')."""
    import threading

    stores = [store_target.open() for _ in range(4)]
    keys: list[str | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def boot(store: ScheduleStore) -> None:
        start.wait()
        try:
            keys.append(store.ensure_bootstrap_admin())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == []
        assert len([k for k in keys if k]) == 1
        assert len(stores[0].list_bureaus()) == 1
    finally:
        for s in stores:
            s.close()


async def test_schools_classrooms_teachers(env: Env) -> None:
    status, body = await env.call("GET", "/api/schools")
    assert status == 200 and len(body["schools"]) == 2
    status, school = await env.call("GET", f"/api/schools/{env.ids['rural']}")
    assert status == 200
    assert {c["name"] for c in school["classrooms"]} == {"Remote 1", "Remote 2", "Remote 3"}
    status, body = await env.call("GET", "/api/classrooms", params={"school_id": env.ids["rural"]})
    assert status == 200 and len(body["classrooms"]) == 3
    status, body = await env.call("GET", "/api/classrooms")
    assert len(body["classrooms"]) == 5
    status, room = await env.call("GET", f"/api/classrooms/{env.ids['r3']}")
    assert status == 200 and room["kind"] == "hardware"
    status, body = await env.call("GET", "/api/teachers")
    assert status == 200 and len(body["teachers"]) == 2
    status, body = await env.call("GET", "/api/teachers", params={"school_id": env.ids["rural"]})
    assert body["teachers"] == []


async def test_school_classroom_teacher_refusals(env: Env) -> None:
    assert_error(*await env.call("POST", "/api/schools", {"name": ""}), 400, "invalid_field")
    assert_error(*await env.call("POST", "/api/schools", {"name": "x", "extra": 1}), 400)
    assert_error(*await env.call("GET", "/api/schools/sch_nope"), 404, "not_found")
    assert_error(
        *await env.call("POST", "/api/classrooms", {"school_id": "sch_x", "name": "a"}),
        400,
        "unknown_school",
    )
    assert_error(
        *await env.call("POST", "/api/classrooms", {"school_id": env.ids["rural"], "name": "a", "kind": "tv"}),
        400,
        "invalid_field",
    )
    assert_error(*await env.call("GET", "/api/classrooms/cls_nope"), 404)
    assert_error(*await env.call("GET", "/api/classrooms", params={"school_id": "x"}), 404)
    assert_error(
        *await env.call("POST", "/api/teachers", {"school_id": "sch_x", "name": "a"}),
        400,
        "unknown_school",
    )
    assert_error(*await env.call("GET", "/api/teachers", params={"school_id": "x"}), 404)


async def test_lesson_crud(env: Env) -> None:
    status, lesson = await env.call("POST", "/api/lessons", env.lesson_body(recording=True))
    assert status == 201, lesson
    lid = lesson["id"]
    assert lesson["recording"] is True and lesson["cancelled"] is False
    assert lesson["start"] == "2026-11-23T09:00:00+08:00"

    status, got = await env.call("GET", f"/api/lessons/{lid}")
    assert status == 200 and got == lesson

    status, body = await env.call("GET", "/api/lessons")
    assert [x["id"] for x in body["lessons"]] == [lid]

    status, put = await env.call("PUT", f"/api/lessons/{lid}", env.lesson_body(title="Decimals", recording=False))
    assert status == 200 and put["title"] == "Decimals" and put["recording"] is False

    status, patched = await env.call("PATCH", f"/api/lessons/{lid}", {"remote_classroom_ids": [env.ids["r3"]]})
    assert status == 200, patched
    assert patched["remote_classroom_ids"] == [env.ids["r3"]]
    assert patched["title"] == "Decimals"

    status, occs = await env.call("GET", f"/api/lessons/{lid}/occurrences")
    assert status == 200 and [o["occurrence_id"] for o in occs["occurrences"]] == [lid]

    status, cancelled = await env.call("POST", f"/api/lessons/{lid}/cancel")
    assert status == 200 and cancelled["cancelled"] is True
    assert_error(*await env.call("POST", f"/api/lessons/{lid}/cancel"), 409, "lesson_cancelled")
    assert_error(*await env.call("PATCH", f"/api/lessons/{lid}", {"title": "x"}), 409)
    assert_error(*await env.call("GET", f"/api/lessons/{lid}/links"), 409, "lesson_cancelled")
    status, occs = await env.call("GET", f"/api/lessons/{lid}/occurrences")
    assert occs["occurrences"][0]["status"] == "cancelled"


async def test_recurring_lesson_and_occurrence_cancel(env: Env) -> None:
    body = env.lesson_body(recurrence={"until": "2026-12-21", "exceptions": ["2026-12-07"]})
    status, lesson = await env.call("POST", "/api/lessons", body)
    assert status == 201, lesson
    lid = lesson["id"]
    assert lesson["recurrence"] == {
        "frequency": "weekly",
        "until": "2026-12-21",
        "exceptions": ["2026-12-07"],
    }
    status, occs = await env.call("GET", f"/api/lessons/{lid}/occurrences")
    assert [o["date"] for o in occs["occurrences"]] == [
        "2026-11-23",
        "2026-11-30",
        "2026-12-14",
        "2026-12-21",
    ]
    assert occs["occurrences"][1]["occurrence_id"] == f"{lid}@2026-11-30"

    status, after = await env.call("POST", f"/api/lessons/{lid}/cancel", {"date": "2026-11-30"})
    assert status == 200 and after["recurrence"]["exceptions"] == ["2026-11-30", "2026-12-07"]
    assert_error(*await env.call("POST", f"/api/lessons/{lid}/cancel", {"date": "2026-11-30"}), 400)
    assert_error(
        *await env.call("POST", f"/api/lessons/{lid}/cancel", {"date": "2026-11-31"}),
        400,
        "invalid_time",
    )
    status, week = await env.call("GET", "/api/schedule/week", params={"date": "2026-12-01"})
    assert week["occurrences"] == []
    status, week = await env.call("GET", "/api/schedule/week", params={"date": "2026-12-17"})
    assert [o["occurrence_id"] for o in week["occurrences"]] == [f"{lid}@2026-12-14"]
    # links for a given week
    status, links = await env.call("GET", f"/api/lessons/{lid}/links", params={"date": "2026-12-14"})
    assert status == 200 and links["occurrence_id"] == f"{lid}@2026-12-14"
    assert_error(*await env.call("GET", f"/api/lessons/{lid}/links", params={"date": "2026-11-30"}), 404)
    # a one-off lesson has no per-date cancel
    status, single = await env.call(
        "POST",
        "/api/lessons",
        env.lesson_body(start="2026-11-24T09:00:00+08:00", end="2026-11-24T10:00:00+08:00"),
    )
    assert_error(
        *await env.call("POST", f"/api/lessons/{single['id']}/cancel", {"date": "2026-11-24"}),
        400,
    )


async def test_today_and_week_with_filters(env: Env) -> None:
    _, a = await env.call("POST", "/api/lessons", env.lesson_body())
    _, b = await env.call(
        "POST",
        "/api/lessons",
        env.lesson_body(
            title="Tomorrow",
            lead_classroom_id=env.ids["lead2"],
            lead_teacher_id=env.ids["teacher2"],
            remote_classroom_ids=[env.ids["r3"]],
            start="2026-11-24T14:00:00+08:00",
            end="2026-11-24T14:45:00+08:00",
        ),
    )
    _, c = await env.call(
        "POST",
        "/api/lessons",
        env.lesson_body(
            title="Next week",
            start="2026-11-30T09:00:00+08:00",
            end="2026-11-30T09:45:00+08:00",
        ),
    )
    status, today = await env.call("GET", "/api/schedule/today")
    assert status == 200 and today["date"] == "2026-11-23"
    assert [o["lesson_id"] for o in today["occurrences"]] == [a["id"]]
    status, day = await env.call("GET", "/api/schedule/today", params={"date": "2026-11-24"})
    assert [o["lesson_id"] for o in day["occurrences"]] == [b["id"]]
    status, week = await env.call("GET", "/api/schedule/week")
    assert week["week_start"] == "2026-11-23" and week["week_end"] == "2026-11-29"
    assert [o["lesson_id"] for o in week["occurrences"]] == [a["id"], b["id"]]
    status, week = await env.call("GET", "/api/schedule/week", params={"classroom_id": env.ids["r3"]})
    assert [o["lesson_id"] for o in week["occurrences"]] == [b["id"]]
    status, week = await env.call(
        "GET", "/api/schedule/week", params={"school_id": env.ids["rural"], "date": "2026-12-02"}
    )
    assert [o["lesson_id"] for o in week["occurrences"]] == [c["id"]]
    assert_error(
        *await env.call("GET", "/api/schedule/week", params={"date": "next week"}),
        400,
        "invalid_time",
    )
    assert_error(*await env.call("GET", "/api/schedule/today", params={"classroom_id": "x"}), 404)


async def test_join_links(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    status, body = await env.call("GET", f"/api/lessons/{lesson['id']}/links")
    assert status == 200, body
    assert body["not_before"] == "2026-11-23T08:45:00+08:00"
    assert body["expires"] == "2026-11-23T10:15:00+08:00"
    roles = [(x["classroom_id"], x["role"]) for x in body["links"]]
    assert roles[:3] == [
        (env.ids["lead"], "lead"),
        (env.ids["r1"], "remote"),
        (env.ids["r2"], "remote"),
    ]
    assert roles[3][1] == "observer" and roles[3][0].startswith("observer-")
    lead = body["links"][0]
    assert lead["url"].startswith(f"{PUBLIC_URL}/lead.html?token=")
    assert body["links"][1]["url"].startswith(f"{PUBLIC_URL}/remote.html?token=")
    assert body["links"][3]["url"].startswith(f"{PUBLIC_URL}/observer.html?token=")
    claims = env.signer.verify(lead["token"], now=env.clock.now + 2 * 3600)
    assert claims.lesson_id == lesson["id"] and claims.role == "lead"
    assert claims.name == "Lead room" and claims.lesson_title == "Fractions"
    assert_error(*await env.call("GET", "/api/lessons/les_000000000000/links"), 404)
    assert_error(
        *await env.call("GET", f"/api/lessons/{lesson['id']}/links", params={"date": "2026-11-24"}),
        404,
    )


async def test_live_status_endpoint(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    lid = lesson["id"]
    status, live = await env.call("GET", f"/api/lessons/{lid}/live")
    assert status == 200 and live["status"] == "scheduled" and live["connected"] == []
    assert live["expected"] == [env.ids["lead"], env.ids["r1"], env.ids["r2"]]
    env.clock.now += 2 * 3600 - 10 * 60  # 08:50
    env.store.on_joined(lid, env.ids["lead"])
    env.live.rooms[lid] = [env.ids["lead"]]
    status, live = await env.call("GET", f"/api/lessons/{lid}/live")
    assert live["status"] == "live" and live["connected"] == [env.ids["lead"]]
    assert live["history"][0]["classroom_id"] == env.ids["lead"]
    assert live["history"][0]["left_at"] is None
    status, today = await env.call("GET", "/api/schedule/today")
    assert today["occurrences"][0]["status"] == "live"
    assert today["occurrences"][0]["connected"] == [env.ids["lead"]]
    assert today["occurrences"][0]["started_at"] == "2026-11-23T08:50:00+08:00"


async def test_lesson_bad_input(env: Env) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (env.lesson_body(end="2026-11-23T08:00:00+08:00"), "invalid_time"),
        (env.lesson_body(end="2026-11-23T09:00:00+08:00"), "invalid_time"),
        (env.lesson_body(start="not a time"), "invalid_time"),
        (env.lesson_body(start="2026-11-23T25:00:00"), "invalid_time"),
        (env.lesson_body(end="2026-11-24T09:45:00+08:00"), "invalid_time"),
        (env.lesson_body(remote_classroom_ids=[]), "no_remote_classroom"),
        (env.lesson_body(remote_classroom_ids="cls_x"), "invalid_field"),
        (env.lesson_body(remote_classroom_ids=["cls_unknown"]), "unknown_classroom"),
        (env.lesson_body(lead_classroom_id="cls_unknown"), "unknown_classroom"),
        (env.lesson_body(lead_teacher_id="tch_unknown"), "unknown_teacher"),
        (env.lesson_body(remote_classroom_ids=[env.ids["lead"]]), "invalid_field"),
        (env.lesson_body(remote_classroom_ids=[env.ids["r1"], env.ids["r1"]]), "invalid_field"),
        (env.lesson_body(title=""), "invalid_field"),
        (env.lesson_body(title=5), "invalid_field"),
        (env.lesson_body(recording="yes"), "invalid_field"),
        (env.lesson_body(colour="red"), "invalid_field"),
        (env.lesson_body(recurrence={"until": "2026-11-01"}), "invalid_time"),
        (env.lesson_body(recurrence={"until": "2028-11-01"}), "invalid_time"),
        (env.lesson_body(recurrence={"until": "someday"}), "invalid_time"),
        (
            env.lesson_body(recurrence={"until": "2026-12-01", "frequency": "daily"}),
            "invalid_field",
        ),
        (env.lesson_body(recurrence=[1]), "invalid_field"),
        (
            env.lesson_body(recurrence={"until": "2026-11-23", "exceptions": ["2026-11-23"]}),
            "invalid_field",
        ),
    ]
    for body, code in cases:
        assert_error(*await env.call("POST", "/api/lessons", body), 400, code)
    missing = env.lesson_body()
    del missing["start"]
    assert_error(*await env.call("POST", "/api/lessons", missing), 400, "invalid_time")
    status, body = await env.call("GET", "/api/lessons")
    assert body["lessons"] == []  # nothing half-written


async def test_malformed_and_oversized_bodies(env: Env) -> None:
    h = {**env.h(), "Content-Type": "application/json"}
    for raw in (b"{", b"[]", b"\xff\xfe", b"", b'"text"', b"null"):
        resp = await env.client.post("/api/lessons", data=raw, headers=h)
        assert_error(resp.status, await resp.json(), 400, "bad_json")
    big = json.dumps({"title": "x" * (1024 * 1024 + 10)}).encode()
    resp = await env.client.post("/api/lessons", data=big, headers=h)
    assert_error(resp.status, await resp.json(), 413, "body_too_large")

    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 65536

    resp = await env.client.post("/api/schools", data=chunks(), headers=h)
    assert_error(resp.status, await resp.json(), 413, "body_too_large")
    status, body = await env.call("GET", "/api/lessons")
    assert body["lessons"] == []


async def test_unknown_endpoint_and_method(env: Env) -> None:
    assert_error(*await env.call("GET", "/api/nothing/here"), 404, "not_found")
    status, body = await env.call("DELETE", "/api/lessons")
    assert_error(status, body, 405, "method_not_allowed")
    assert_error(*await env.call("GET", "/api/lessons/les_000000000000"), 404)
    assert_error(*await env.call("PUT", "/api/lessons/les_000000000000", env.lesson_body()), 404)
    assert_error(*await env.call("POST", "/api/lessons/les_000000000000/cancel"), 404)
    assert_error(*await env.call("GET", "/api/lessons/les_000000000000/live"), 404)
    assert_error(*await env.call("GET", "/api/lessons/les_000000000000/occurrences"), 404)


async def test_unknown_query_parameters_are_refused(env: Env) -> None:
    assert_error(
        *await env.call("GET", "/api/schedule/week", params={"classrom_id": "x"}),
        400,
        "invalid_field",
    )
    assert_error(*await env.call("GET", "/api/lessons", params={"page": "2"}), 400)
    assert_error(*await env.call("GET", "/api/classrooms", params={"school_id": ""}), 400)


async def test_lone_surrogates_and_odd_text_are_4xx(env: Env) -> None:
    h = {**env.h(), "Content-Type": "application/json"}
    bodies = [
        b'{"name": "\\ud800"}',
        b'{"name": "ok", "\\udfff": 1}',
    ]
    for raw in bodies:
        resp = await env.client.post("/api/schools", data=raw, headers=h)
        assert_error(resp.status, await resp.json(), 400)
    body = json.dumps(env.lesson_body(remote_classroom_ids=["\ud800"]))
    resp = await env.client.post("/api/lessons", data=body.encode(), headers=h)
    assert_error(resp.status, await resp.json(), 400)
    status, body_ = await env.call("GET", "/api/lessons/%ED%A0%80")
    assert status == 404
    status, body_ = await env.call("GET", "/api/schedule/week?school_id=%ED%A0%80")
    assert 400 <= status < 500


async def test_openapi_document_is_valid_openapi_3(env: Env) -> None:
    from openapi_spec_validator import validate

    resp = await env.client.get("/api/openapi.json")
    validate(await resp.json())
