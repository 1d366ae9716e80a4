"""District set-up through the real API: CSV import (dry run, all good rows in one go, every
bad row reported), edit/delete of schools, classrooms and teachers, lead-capable classrooms,
administrators and devices with credentials shown once, join links with QR codes."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from signaling.schedule import ScheduleStore
from signaling.schedule.database import IntegrityError
from signaling.schedule.store import MIGRATIONS
from signaling.tokens import TokenError
from tests.integration.schedule.conftest import CST, Env

CSV = (
    "\ufeffschool,classroom,role,kind\r\n"
    "新区中学,初二(1)班,lead,\r\n"
    "新区中学,初二(2)班,remote,hardware\r\n"
    "Village School,Grade 4,remote,\r\n"
    "Village School,Remote 1,remote,\r\n"  # exists already (conftest)
    "新区中学,,remote,\r\n"
)


async def post_csv(env: Env, data: bytes, dry_run: bool, key: str | None = None) -> tuple[int, Any]:
    resp = await env.client.post(
        f"/api/import/classrooms?dry_run={int(dry_run)}",
        data=data,
        headers={**env.h(key), "Content-Type": "text/csv"},
    )
    return resp.status, await resp.json()


async def test_import_dry_run_then_import_creates_only_the_good_rows(env: Env) -> None:
    before = (await env.call("GET", "/api/classrooms"))[1]["classrooms"]
    status, dry = await post_csv(env, CSV.encode("utf-8"), dry_run=True)
    assert status == 200, dry
    assert dry["dry_run"] is True and dry["imported"] is False
    assert [r["row"] for r in dry["rows"]] == [2, 3, 4]
    assert [(e["row"], e["field"], e["code"]) for e in dry["errors"]] == [(5, "classroom", "exists"),
                                                                         (6, "classroom", "required")]
    assert all(e["message_zh"] for e in dry["errors"])
    assert dry["new_schools"] == ["新区中学"]
    assert (await env.call("GET", "/api/classrooms"))[1]["classrooms"] == before  # nothing written

    status, done = await post_csv(env, CSV.encode("utf-8"), dry_run=False)
    assert status == 200 and done["imported"] is True
    assert len(done["created"]["classrooms"]) == 3 and len(done["created"]["schools"]) == 1
    rooms = (await env.call("GET", "/api/classrooms"))[1]["classrooms"]
    assert len(rooms) == len(before) + 3
    by_name = {r["name"]: r for r in rooms}
    assert by_name["初二(1)班"]["lead_capable"] is True
    assert by_name["初二(2)班"]["lead_capable"] is False and by_name["初二(2)班"]["kind"] == "hardware"
    assert by_name["Grade 4"]["school_id"] == env.ids["rural"]  # an existing school, found by name
    assert not [r for r in rooms if r["name"] == ""]

    # the same file again: every row is now a duplicate, nothing more is created
    status, again = await post_csv(env, CSV.encode("utf-8"), dry_run=False)
    assert status == 200 and again["imported"] is False and again["rows"] == []
    assert len((await env.call("GET", "/api/classrooms"))[1]["classrooms"]) == len(rooms)


async def test_import_refuses_unusable_files_with_both_languages(env: Env) -> None:
    status, body = await post_csv(env, "school,classroom,role\nA,一班,lead\n".encode("gb18030"), dry_run=True)
    assert status == 400 and body["error"]["code"] == "csv_encoding" and body["error"]["message_zh"]
    status, body = await post_csv(env, b"a,b\n1,2\n", dry_run=False)
    assert status == 400 and body["error"]["code"] == "csv_header"
    resp = await env.client.post("/api/import/classrooms?dry_run=maybe", data=b"x", headers=env.h())
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "dry_run"
    resp = await env.client.post("/api/import/classrooms", data=CSV.encode(), headers={"Authorization": "Bearer x"})
    assert resp.status == 401


async def test_edit_and_delete_schools_classrooms_teachers(env: Env) -> None:
    status, school = await env.call("PATCH", f"/api/schools/{env.ids['rural']}", {"name": "石桥村小学"})
    assert status == 200 and school["name"] == "石桥村小学"
    status, body = await env.call("DELETE", f"/api/schools/{env.ids['rural']}")
    assert status == 409 and body["error"]["code"] == "in_use" and body["error"]["classrooms"] == 3

    status, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    assert status == 201
    status, body = await env.call("DELETE", f"/api/classrooms/{env.ids['r1']}")
    assert status == 409 and body["error"]["code"] == "in_use" and body["error"]["lessons"] == 1
    status, body = await env.call("DELETE", f"/api/teachers/{env.ids['teacher']}")
    assert status == 409 and body["error"]["code"] == "in_use"
    status, body = await env.call("DELETE", f"/api/teachers/{env.ids['teacher2']}")
    assert status == 200 and body == {"id": env.ids["teacher2"], "deleted": True}
    status, room = await env.call("PATCH", f"/api/classrooms/{env.ids['r3']}", {"name": "三年级", "kind": "browser"})
    assert status == 200 and room["name"] == "三年级" and room["kind"] == "browser" and room["lead_capable"]
    status, body = await env.call("DELETE", f"/api/classrooms/{env.ids['r3']}")
    assert status == 200
    assert (await env.call("GET", f"/api/classrooms/{env.ids['r3']}"))[0] == 404
    status, body = await env.call("PATCH", f"/api/classrooms/{env.ids['r1']}", {"name": ""})
    assert status == 400 and body["error"]["field"] == "name" and body["error"]["reason"] == "required"


async def test_a_remote_only_classroom_cannot_lead_but_a_lesson_keeps_its_lead(env: Env) -> None:
    status, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    assert status == 201
    status, room = await env.call("PATCH", f"/api/classrooms/{env.ids['lead']}", {"lead_capable": False})
    assert status == 200 and room["lead_capable"] is False
    # the existing lesson stays editable with its lead
    status, _ = await env.call("PATCH", f"/api/lessons/{lesson['id']}", {"title": "Fractions II"})
    assert status == 200
    # a new lesson cannot use it as lead
    body = env.lesson_body(start="2026-11-24T09:00:00+08:00", end="2026-11-24T09:45:00+08:00")
    status, err = await env.call("POST", "/api/lessons", body)
    assert status == 400 and err["error"]["code"] == "not_lead_capable"
    assert err["error"]["field"] == "lead_classroom_id"
    status, room = await env.call(
        "POST", "/api/classrooms", {"school_id": env.ids["rural"], "name": "R4", "lead_capable": False}
    )
    assert status == 201 and room["lead_capable"] is False


async def test_validation_errors_name_the_field(env: Env) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"subject": ""}, "invalid_field", "subject"),
        ({"lead_classroom_id": ""}, "invalid_field", "lead_classroom_id"),
        ({"remote_classroom_ids": []}, "no_remote_classroom", "remote_classroom_ids"),
        ({"remote_classroom_ids": [env.ids["lead"]]}, "invalid_field", "remote_classroom_ids"),
        ({"start": "tomorrow"}, "invalid_time", "start"),
        ({"end": "2026-11-23T08:00:00+08:00"}, "invalid_time", "end"),
        ({"recurrence": {"until": "2026-11-01"}}, "invalid_time", "recurrence.until"),
        ({"recurrence": {"until": "2026-12-31", "exceptions": ["x"]}}, "invalid_time", "recurrence.exceptions"),
        ({"lead_teacher_id": "tch_nobody"}, "unknown_teacher", "lead_teacher_id"),
        ({"lead_classroom_id": "cls_nobody"}, "unknown_classroom", "lead_classroom_id"),
    ]
    for over, code, field in cases:
        status, body = await env.call("POST", "/api/lessons", env.lesson_body(**over))
        assert status == 400, (over, body)
        assert (body["error"]["code"], body["error"].get("field")) == (code, field), (over, body)


async def test_administrators_keys_are_shown_once_and_can_be_revoked(env: Env, other_bureau: dict[str, str]) -> None:
    status, created = await env.call("POST", "/api/admins", {"name": "张三"})
    assert status == 201 and created["api_key"].startswith(f"cka_{created['id']}.")
    key = created["api_key"]
    status, me = await env.call("GET", "/api/me", key=key)
    assert status == 200 and me["admin"]["name"] == "张三"
    status, listing = await env.call("GET", "/api/admins")
    assert "api_key" not in str(listing) and key not in str(listing)
    assert {a["name"]: a["me"] for a in listing["admins"]} == {"bootstrap": True, "张三": False}
    # only a hash is stored
    raw = env.where.stored_bytes()
    assert key.encode() not in raw
    # nobody revokes their own key (no lock-out by mistake)
    status, body = await env.call("DELETE", f"/api/admins/{created['id']}", key=key)
    assert status == 409 and body["error"]["code"] == "self_revoke"
    status, _ = await env.call("DELETE", f"/api/admins/{created['id']}")
    assert status == 200
    assert (await env.call("GET", "/api/me", key=key))[0] == 401
    # another bureau's administrators are not ours to revoke
    b_admins = (await env.call("GET", "/api/admins", key=other_bureau["key"]))[1]["admins"]
    status, _ = await env.call("DELETE", f"/api/admins/{b_admins[0]['id']}")
    assert status == 404


async def test_a_device_gets_its_classrooms_link_when_the_lesson_opens(env: Env) -> None:
    status, device = await env.call("POST", "/api/devices", {"classroom_id": env.ids["r2"], "name": "班班通 PC"})
    assert status == 201 and device["credential"].startswith(f"ckd_{device['id']}.")
    cred = device["credential"]
    assert cred.encode() not in env.where.stored_bytes()
    status, answer = await env.call("GET", "/api/device/lesson", key=cred)
    assert status == 200 and answer["lesson"] is None
    assert (await env.call("GET", "/api/me", key=cred))[0] == 401  # not an administrator key
    assert (await env.call("GET", "/api/device/lesson"))[0] == 401  # not a device credential

    status, lesson = await env.call("POST", "/api/lessons", env.lesson_body())  # 09:00 today
    assert status == 201
    status, answer = await env.call("GET", "/api/device/lesson", key=cred)
    assert answer["lesson"]["lesson_id"] == lesson["id"] and answer["lesson"]["link"] is None
    env.clock.set(datetime(2026, 11, 23, 8, 50, tzinfo=CST))
    status, answer = await env.call("GET", "/api/device/lesson", key=cred)
    link = answer["lesson"]["link"]
    assert link["role"] == "remote" and link["classroom_id"] == env.ids["r2"]
    claims = env.signer.verify(link["token"], now=env.clock())
    assert claims.classroom_id == env.ids["r2"] and claims.lesson_id == lesson["id"]
    env.store.admit(claims)

    status, listing = await env.call("GET", "/api/devices")
    assert [d["id"] for d in listing["devices"]] == [device["id"]] and cred not in str(listing)
    status, body = await env.call("DELETE", f"/api/classrooms/{env.ids['r2']}")
    assert status == 409 and body["error"]["devices"] == 1
    assert (await env.call("DELETE", f"/api/devices/{device['id']}"))[0] == 200
    assert (await env.call("GET", "/api/device/lesson", key=cred))[0] == 401
    status, body = await env.call("DELETE", f"/api/devices/{device['id']}")
    assert status == 409 and body["error"]["code"] == "already_revoked"


async def test_links_of_a_lesson_next_week_with_qr_codes(env: Env) -> None:
    body = env.lesson_body(start="2026-11-30T10:00:00+08:00", end="2026-11-30T10:45:00+08:00", recording=True)
    status, lesson = await env.call("POST", "/api/lessons", body)
    assert status == 201
    status, links = await env.call("GET", f"/api/lessons/{lesson['id']}/links?qr=1")
    assert status == 200
    assert [x["role"] for x in links["links"]] == ["lead", "remote", "remote", "observer"]
    for link in links["links"]:
        assert link["qr_svg"].startswith("data:image/svg+xml")
    token = links["links"][1]["token"]
    try:
        env.signer.verify(token, now=env.clock())
    except TokenError as exc:
        assert exc.code  # not valid yet: next week
    else:
        raise AssertionError("a link for next week must not be valid today")
    env.clock.set(datetime(2026, 11, 30, 9, 50, tzinfo=CST))
    claims = env.signer.verify(token, now=env.clock())
    env.store.admit(claims)  # the schedule admits it when the lesson opens
    status, plain = await env.call("GET", f"/api/lessons/{lesson['id']}/links")
    assert "qr_svg" not in plain["links"][0]


async def test_a_real_import_is_all_or_nothing(env: Env) -> None:
    """The good rows go in one transaction: a failure on the last row (here the database's own
    CHECK on kind) leaves no classroom and no new school behind."""
    bureau = env.store.list_bureaus()[0].id
    before_rooms = len(env.store.list_classrooms(bureau))
    before_schools = len(env.store.list_schools(bureau))
    rows = [
        ("全新学校", "一班", True, "browser"),
        ("全新学校", "二班", False, "browser"),
        ("全新学校", "三班", False, "tv"),
    ]
    try:
        env.store.import_classrooms(bureau, rows)
    except IntegrityError:
        pass
    else:
        raise AssertionError("the CHECK constraint should have refused kind 'tv'")
    assert len(env.store.list_classrooms(bureau)) == before_rooms
    assert len(env.store.list_schools(bureau)) == before_schools


def test_an_existing_database_is_migrated_and_its_classrooms_may_lead(tmp_path: Path) -> None:
    """A schedule written by the first schema (before district set-up) opens at version 2: its
    classrooms are lead-capable (as every classroom was), devices can be added."""
    path = tmp_path / "schedule.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO bureaus VALUES ('bur_1', 'Old bureau', 'Asia/Shanghai', 0)")
    conn.execute("INSERT INTO schools VALUES ('sch_1', 'bur_1', 'Old school', 0)")
    conn.execute("INSERT INTO classrooms VALUES ('cls_1', 'sch_1', 'Old room', 'browser', 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = ScheduleStore.open(path)
    try:
        assert store.schema_version == len(MIGRATIONS) >= 2
        room = store.get_classroom("bur_1", "cls_1")
        assert room is not None and room.lead_capable is True
        device, _ = store.create_device("bur_1", "cls_1", "PC")
        assert [d.id for d in store.list_devices("bur_1")] == [device.id]
    finally:
        store.close()
