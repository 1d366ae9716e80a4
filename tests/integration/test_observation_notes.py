"""Observation notes (#18) through a real server and real WebSocket peers: an observer's ``note``
is answered with ``note_saved`` (its media time), reaches the other observers and no classroom;
other roles get ``forbidden``; the notes API lets the lesson's observers, its teacher and its
bureau's administrators read them and nobody else; a note added afterwards goes into the
recording's manifest, and a playback link's manifest never carries notes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from classroom.server import DEMO_LESSON_ID, Server, start_server
from recorder.manifest import Manifest, write_manifest
from signaling.notes import DEFAULT_RUBRIC
from signaling.schedule.models import LessonSpec
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer


@pytest.fixture
async def demo_server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_server(server_config(tmp_path, demo=True))
    try:
        yield srv
    finally:
        await srv.stop()


def tok(server: Server, classroom: str, role: str, lesson: str = DEMO_LESSON_ID, name: str = "") -> str:
    return server.signer.issue(lesson, classroom, role, name or classroom)


async def api(server: Server, method: str, path: str, credential: str | None,
              body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.base_url + path, headers=headers, json=body) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


def admin_key(server: Server) -> str:
    return (server.config.data_path / "admin-key.txt").read_text().split()[0]


async def test_live_note_reaches_the_other_observers_only(demo_server: Server) -> None:
    lead = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-lead", "lead"))
    remote = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-remote-1", "remote"))
    o1 = ClassroomPeer(demo_server.base_url, tok(demo_server, "obs-1", "observer", name="王老师"))
    o2 = ClassroomPeer(demo_server.base_url, tok(demo_server, "obs-2", "observer", name="李老师"))
    peers = (lead, remote, o1, o2)
    try:
        joined = {}
        for p in peers:
            joined[p] = await p.connect()
            assert joined[p]["type"] == "joined"
        assert joined[o1]["rubric"] == list(DEFAULT_RUBRIC)
        assert "rubric" not in joined[lead] and "rubric" not in joined[remote]
        moment = max(0, joined[o1]["elapsed_ms"] - 300)  # the observer pressed "moment" 0.3 s ago
        ref = await o1.send({"type": "note", "text": "远端学生回答很积极", "dimension": "远端关注", "score": 4,
                             "moment": moment})
        saved = await o1.expect("note_saved")
        assert saved["re"] == ref
        note = saved["note"]
        assert abs(saved["t_ms"] - moment) <= 50, (saved["t_ms"], moment)  # no recording: the room's clock
        assert note["author"] == "王老师" and note["score"] == 4 and note["dimension"] == "远端关注"
        assert note["moment"] is True and note["origin"] == "live"
        relayed = await o2.expect("note", timeout=1.0)
        assert relayed["note"]["id"] == note["id"] and relayed["note"]["text"] == "远端学生回答很积极"
        # without a moment: stamped at arrival
        await o2.send({"type": "note", "text": "板书清楚"})
        plain = await o2.expect("note_saved")
        assert plain["note"]["dimension"] is None and plain["note"]["score"] is None
        assert plain["note"]["moment"] is False
        assert (await o1.expect("note", timeout=1.0))["note"]["id"] == plain["note"]["id"]
        # other roles may not post; bad notes are refused with the field named; nothing breaks
        for peer, role in ((lead, "lead"), (remote, "remote")):
            ref = await peer.send({"type": "note", "text": "x"})
            err = await peer.expect("error")
            assert err["code"] == "forbidden" and err["re"] == ref and role in err["message"], err
        for bad, word in (({"score": 9}, "score"), ({"dimension": "不存在的维度"}, "dimension"),
                          ({"text": ""}, "text"), ({"moment": 10**9}, "moment"), ({"score": "5"}, "score")):
            await o1.send({"type": "note", "text": "x", **bad})
            err = await o1.expect("error")
            assert err["code"] == "bad_field" and word in err["message"], err
        await asyncio.sleep(0.3)
        for classroom in (lead, remote):
            assert not [m for m in classroom.log if m["type"] in ("note", "note_saved")], classroom.log
        await o1.send({"type": "ping"})
        assert (await o1.expect("pong"))["type"] == "pong"  # still connected
        # kept in the schedule database: the API lists both in time order
        status, body = await api(demo_server, "GET", f"/api/lessons/{DEMO_LESSON_ID}/notes",
                                 tok(demo_server, "obs-2", "observer"))
        assert status == 200, body
        assert [n["id"] for n in body["notes"]] == [note["id"], plain["note"]["id"]]
        assert body["rubric"] == list(DEFAULT_RUBRIC) and body["may_add"] is True
    finally:
        for p in peers:
            await p.close()


async def test_notes_api_access(demo_server: Server) -> None:
    o1 = ClassroomPeer(demo_server.base_url, tok(demo_server, "obs-1", "observer"))
    try:
        await o1.connect()
        await o1.send({"type": "note", "text": "课堂秩序好", "dimension": "教学目标", "score": 5})
        await o1.expect("note_saved")
    finally:
        await o1.close()
    path = f"/api/lessons/{DEMO_LESSON_ID}/notes"
    # a remote classroom may neither read nor add
    remote = tok(demo_server, "demo-remote-1", "remote")
    assert (await api(demo_server, "GET", path, remote))[0] == 403
    assert (await api(demo_server, "GET", path + "?format=csv", remote))[0] == 403
    assert (await api(demo_server, "POST", path, remote, {"text": "x", "t_ms": 1}))[0] == 403
    # nor the recorder's token, nor an observer or teacher of another lesson
    assert (await api(demo_server, "GET", path, tok(demo_server, "rec", "recorder")))[0] == 403
    assert (await api(demo_server, "GET", path, tok(demo_server, "obs-9", "observer", lesson="lesson-b")))[0] == 403
    assert (await api(demo_server, "GET", path, tok(demo_server, "lead-b", "lead", lesson="lesson-b")))[0] == 403
    status, body = await api(demo_server, "GET", "/api/lessons/lesson-b/notes",
                             tok(demo_server, "obs-1", "observer"))
    assert status == 403, body  # lesson A's observer, lesson B's notes
    # no credential, a forged token
    assert (await api(demo_server, "GET", path, None))[0] == 401
    assert (await api(demo_server, "GET", path, "abc.def"))[0] == 401
    # the lesson's teacher reads, but does not write
    status, body = await api(demo_server, "GET", path, tok(demo_server, "demo-lead", "lead"))
    assert status == 200 and [n["text"] for n in body["notes"]] == ["课堂秩序好"] and body["may_add"] is False
    assert (await api(demo_server, "POST", path, tok(demo_server, "demo-lead", "lead"),
                      {"text": "x", "t_ms": 1}))[0] == 403
    # an administrator reads; CSV export
    key = admin_key(demo_server)
    status, body = await api(demo_server, "GET", path, key)
    assert status == 200 and len(body["notes"]) == 1
    status, text = await api(demo_server, "GET", path + "?format=csv", key)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert status == 200 and rows[1][2] == "obs-1" and rows[1][3] == "教学目标" and rows[1][4] == "5"
    # no recording of the demo lesson here: a note afterwards has nowhere to go
    status, body = await api(demo_server, "POST", path, key, {"text": "x", "t_ms": 1000})
    assert status == 409 and body["error"]["code"] == "no_recording"
    status, body = await api(demo_server, "POST", path, key, {"text": "x", "t_ms": -1})
    assert status == 400 and body["error"]["field"] == "t_ms"


async def test_teacher_and_bureau_see_their_own_lessons_only(demo_server: Server) -> None:
    store = demo_server.extras["schedule"]
    bureau_a = store.bureau_by_name("Default bureau")
    bureau_b = store.create_bureau("另一个县 Other county")
    _, key_b = store.create_admin(bureau_b.id, "别人 Other admin")
    school = store.create_school(bureau_a.id, "城关小学")
    lead_room = store.create_classroom(bureau_a.id, school.id, "一(1)班", "browser")
    remote_room = store.create_classroom(bureau_a.id, school.id, "村小", "browser", lead_capable=False)
    now = time.time()
    lessons = [
        store.create_lesson(bureau_a.id, LessonSpec("数学", f"课{i}", lead_room.id, None, (remote_room.id,),
                                                    now - 60 + 3600 * 2 * i, now + 1800 + 3600 * 2 * i))
        for i in range(2)
    ]
    a, b = (lesson.id for lesson in lessons)
    # notes on lesson A, written by its observer (the live path writes the same rows)
    o1 = ClassroomPeer(demo_server.base_url, tok(demo_server, "obs-1", "observer", lesson=a))
    try:
        assert (await o1.connect())["type"] == "joined"
        await o1.send({"type": "note", "text": "提问有层次", "dimension": "师生互动", "score": 3})
        saved = await o1.expect("note_saved")
        assert saved["note"]["lesson_id"] == a
    finally:
        await o1.close()
    teacher_a = tok(demo_server, lead_room.id, "lead", lesson=a)
    status, body = await api(demo_server, "GET", f"/api/lessons/{a}/notes", teacher_a)
    assert status == 200 and [n["text"] for n in body["notes"]] == ["提问有层次"]
    assert (await api(demo_server, "GET", f"/api/lessons/{b}/notes", teacher_a))[0] == 403  # not their lesson B
    # the lesson's bureau reads; another bureau's administrator does not even see the lesson
    assert (await api(demo_server, "GET", f"/api/lessons/{a}/notes", admin_key(demo_server)))[0] == 200
    assert (await api(demo_server, "GET", f"/api/lessons/{a}/notes", key_b))[0] == 404
    # the term dashboard's reader: the bureau's notes, with lesson and dimension
    from signaling.schedule.notes_store import notes_for_bureau

    mine = notes_for_bureau(store, bureau_a.id)
    assert [(n.lesson_id, n.dimension, n.score) for n in mine] == [(a, "师生互动", 3)]
    assert notes_for_bureau(store, bureau_b.id) == []
    # a bureau's own rubric: set by its administrator, sent to its lessons' observers
    status, body = await api(demo_server, "PUT", "/api/settings/rubric", admin_key(demo_server),
                             {"dimensions": ["提问", "反馈"]})
    assert status == 200 and body["dimensions"] == ["提问", "反馈"]
    status, body = await api(demo_server, "PUT", "/api/settings/rubric", admin_key(demo_server),
                             {"dimensions": ["提问", "提问"]})
    assert status == 400 and body["error"]["field"] == "dimensions"
    assert (await api(demo_server, "GET", "/api/settings/rubric", key_b))[1]["dimensions"] == list(DEFAULT_RUBRIC)
    o2 = ClassroomPeer(demo_server.base_url, tok(demo_server, "obs-2", "observer", lesson=a))
    try:
        assert (await o2.connect())["rubric"] == ["提问", "反馈"]
        await o2.send({"type": "note", "text": "x", "dimension": "师生互动"})  # not in this bureau's rubric
        assert (await o2.expect("error"))["code"] == "bad_field"
    finally:
        await o2.close()


async def test_a_note_afterwards_goes_into_the_manifest_and_no_playback_link_shows_notes(
        demo_server: Server) -> None:
    from datetime import UTC, datetime

    directory = demo_server.config.data_path / "recordings" / DEMO_LESSON_ID
    started = datetime.fromtimestamp(time.time() - 600, UTC)
    write_manifest(directory / "manifest.json", Manifest(DEMO_LESSON_ID, "演示课", started, duration_ms=300_000,
                                                         complete=True))
    path = f"/api/lessons/{DEMO_LESSON_ID}/notes"
    status, body = await api(demo_server, "POST", path, tok(demo_server, "obs-1", "observer", name="王老师"),
                             {"text": "回看：这里的追问很好", "dimension": "师生互动", "score": 5, "t_ms": 123_400})
    assert status == 201, body
    assert body["note"]["t_ms"] == 123_400 and body["note"]["origin"] == "playback"
    raw = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    events = [e for e in raw["events"] if e["type"] == "observation_note"]
    assert len(events) == 1 and events[0]["t_ms"] == 123_400 and events[0]["author"] == "王老师"
    assert events[0]["score"] == 5 and events[0]["dimension"] == "师生互动"
    status, body = await api(demo_server, "GET", path, admin_key(demo_server))
    assert [n["t_ms"] for n in body["notes"]] == [123_400]
    # the signed manifest a playback link serves (also to a remote classroom) has no notes
    service = demo_server.extras["recording"].service
    async with aiohttp.ClientSession() as http:
        async with http.get(demo_server.base_url + service.manifest_url(DEMO_LESSON_ID)) as resp:
            served = await resp.json()
    assert resp.status == 200 and not [e for e in served["events"] if e["type"] == "observation_note"]
    # the bureau page's playback link carries an observer token in the administrator's name
    from urllib.parse import parse_qs, urlsplit

    status, listed = await api(demo_server, "GET", "/api/recordings", admin_key(demo_server))
    assert status == 200, listed
    link_token = parse_qs(urlsplit(listed["recordings"][0]["playback_url"]).query)["token"][0]
    status, body = await api(demo_server, "GET", path, link_token)
    assert status == 200 and [n["t_ms"] for n in body["notes"]] == [123_400] and body["may_add"] is True
    # a teacher's and an observer's playback link carry their token (for the notes); a remote's does not
    for classroom, role, has_token in (("demo-lead", "lead", True), ("obs-1", "observer", True),
                                       ("demo-remote-1", "remote", False)):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{demo_server.base_url}/api/recordings/{DEMO_LESSON_ID}/playback",
                                params={"token": tok(demo_server, classroom, role)}, allow_redirects=False) as resp:
                assert resp.status == 302, await resp.text()
                assert ("&token=" in resp.headers["Location"]) is has_token


async def test_the_recorder_writes_notes_into_the_manifest_also_those_before_it_joined(
        tmp_path: Path) -> None:
    from recorder.manifest import read_manifest
    from recorder.worker import LiveRecorder
    from tests.integration.recorder.test_live_recorder import recorder_token, token, wait_until

    srv = await start_server(server_config(tmp_path))
    observer = ClassroomPeer(srv.base_url, token(srv, "obs-1", "observer", "王老师"))
    out = srv.config.data_path / "recordings" / "rec-lesson"  # where the server looks for the timeline
    stop = asyncio.Event()
    task: asyncio.Task[int] | None = None
    try:
        assert (await observer.connect())["type"] == "joined"
        await observer.send({"type": "note", "text": "录制前的记录", "score": 2})
        early = (await observer.expect("note_saved"))["note"]
        await asyncio.sleep(0.3)
        recorder = LiveRecorder(srv.base_url.replace("http", "ws", 1) + "/ws", recorder_token(srv),
                                srv.config.data_path, out=out)
        task = asyncio.create_task(recorder.run(stop))
        await wait_until(lambda: (out / "manifest.json").exists() and recorder.session is not None, 20,
                         "the recorder joined")
        await asyncio.sleep(0.5)
        await observer.send({"type": "note", "text": "录制中的记录", "dimension": "学生参与", "score": 5})
        saved = await observer.expect("note_saved")
        session = recorder.session
        assert session is not None

        def both() -> bool:
            return len([e for e in session.events if e.type == "observation_note"]) == 2

        await wait_until(both, 10, "both notes in the recording's timeline")
        stop.set()
        await task
        task = None
        notes = {e.extra["text"]: e for e in read_manifest(out / "manifest.json").events
                 if e.type == "observation_note"}
        assert set(notes) == {"录制前的记录", "录制中的记录"}
        assert notes["录制前的记录"].t_ms == 0 and notes["录制前的记录"].extra["note_id"] == early["id"]
        during = notes["录制中的记录"]
        assert abs(during.t_ms - saved["t_ms"]) <= 2, (during.t_ms, saved["t_ms"])  # one mapping, both sides
        assert during.extra["author"] == "王老师" and during.extra["score"] == 5
        assert during.extra["dimension"] == "学生参与" and during.classroom_id is None
    finally:
        stop.set()
        if task is not None:
            await task
        await observer.close()
        await srv.stop()
