"""POST /api/device/health (room hardware's health reports) and the device list's last seen."""

from __future__ import annotations

import pytest

from .conftest import Env

REPORT = {"version": "0.1.0", "uptime_s": 12.5, "state": "in_lesson", "lesson_id": "les_0123456789ab",
          "frames_sent_video": 300, "frames_sent_audio": 500,
          "frames_received_video": 290, "frames_received_audio": 480, "cpu_percent": 35.5, "rtt_ms": 12.0,
          "loss": 0.01}


async def device(env: Env, room: str = "r2") -> dict[str, str]:
    status, d = await env.call("POST", "/api/devices", {"classroom_id": env.ids[room], "name": "PC"})
    assert status == 201
    return dict(d)


async def test_a_report_shows_as_last_seen_and_online_until_it_is_old(env: Env) -> None:
    d = await device(env)
    listing = (await env.call("GET", "/api/devices"))[1]["devices"]
    assert listing[0]["last_seen"] is None and listing[0]["online"] is False and listing[0]["health"] is None
    status, body = await env.call("POST", "/api/device/health", REPORT, key=d["credential"])
    assert status == 200 and body["device_id"] == d["id"]
    listing = (await env.call("GET", "/api/devices"))[1]["devices"]
    assert listing[0]["online"] is True and listing[0]["last_seen"] == body["received_at"]
    assert listing[0]["health"] == {**REPORT, "uptime_s": 12.5}
    env.clock.now += 31  # reports come every few seconds: 30 s without one is offline
    listing = (await env.call("GET", "/api/devices"))[1]["devices"]
    assert listing[0]["online"] is False and listing[0]["last_seen"] == body["received_at"]


async def test_only_a_device_credential_reports(env: Env) -> None:
    d = await device(env)
    assert (await env.call("POST", "/api/device/health", REPORT))[0] == 401  # an administrator key
    assert (await env.call("POST", "/api/device/health", REPORT, key="ckd_nope.secret"))[0] == 401
    assert (await env.call("DELETE", f"/api/devices/{d['id']}"))[0] == 200
    assert (await env.call("POST", "/api/device/health", REPORT, key=d["credential"]))[0] == 401  # revoked


async def test_a_device_reports_only_for_itself_and_its_bureau_sees_it(env: Env, other_bureau: dict[str, str]) -> None:
    d = await device(env)
    assert (await env.call("POST", "/api/device/health", REPORT, key=d["credential"]))[0] == 200
    theirs = (await env.call("GET", "/api/devices", key=other_bureau["key"]))[1]["devices"]
    assert theirs == []


@pytest.mark.parametrize("bad,field", [
    ({}, "version"), ({"version": "1"}, "uptime_s"), ({"version": "1", "uptime_s": -1}, "uptime_s"),
    ({"version": "1", "uptime_s": True}, "uptime_s"), ({"version": "x" * 65, "uptime_s": 1}, "version"),
    ({"version": "1", "uptime_s": 1, "frames_sent_video": -3}, "frames_sent_video"),
    ({"version": "1", "uptime_s": 1, "frames_received_audio": 1.5}, "frames_received_audio"),
    ({"version": "1", "uptime_s": 1, "state": "\x00"}, "state"),
    ({"version": "1", "uptime_s": 1, "cpu": 3}, "cpu"),
    ({"version": "1", "uptime_s": 1, "loss": 1.5}, "loss"), ({"version": "1", "uptime_s": 1, "rtt_ms": "9"}, "rtt_ms"),
])
async def test_a_bad_report_is_refused_naming_the_field(env: Env, bad: dict[str, object], field: str) -> None:
    d = await device(env)
    status, body = await env.call("POST", "/api/device/health", bad, key=d["credential"])
    assert status == 400 and body["error"]["code"] == "invalid_field" and body["error"]["field"] == field
    assert (await env.call("GET", "/api/devices"))[1]["devices"][0]["last_seen"] is None


async def test_after_its_end_a_lesson_gives_way_to_the_next_one(env: Env) -> None:
    from datetime import datetime, timedelta, timezone

    d = await device(env)
    first = (await env.call("POST", "/api/lessons", env.lesson_body()))[1]  # 09:00-09:45
    second = (await env.call("POST", "/api/lessons", env.lesson_body(
        start="2026-11-23T10:00:00+08:00", end="2026-11-23T10:45:00+08:00", lead_teacher_id=env.ids["teacher2"])))[1]
    cst = timezone(timedelta(hours=8))
    env.clock.set(datetime(2026, 11, 23, 9, 44, tzinfo=cst))
    assert (await env.call("GET", "/api/device/lesson", key=d["credential"]))[1]["lesson"]["lesson_id"] == first["id"]
    env.clock.set(datetime(2026, 11, 23, 9, 46, tzinfo=cst))  # the first's links are still valid
    lesson = (await env.call("GET", "/api/device/lesson", key=d["credential"]))[1]["lesson"]
    assert lesson["lesson_id"] == second["id"] and lesson["link"]["classroom_id"] == env.ids["r2"]
