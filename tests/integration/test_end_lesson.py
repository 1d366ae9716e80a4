"""The lead ends the lesson (``end_lesson``), the lead learns which classrooms are expected
(``joined.expected``) and whether the lesson is recorded (``joined.recording``): through a real
server and real WebSocket peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from classroom.server import DEMO_LESSON_ID, Server, start_server
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer


@pytest.fixture
async def demo_server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_server(server_config(tmp_path, demo=True))
    try:
        yield srv
    finally:
        await srv.stop()


def tok(server: Server, classroom: str, role: str, lesson: str = DEMO_LESSON_ID) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_only_the_lead_may_end_the_lesson(demo_server: Server) -> None:
    lead = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-lead", "lead"))
    remote = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-remote-1", "remote"))
    observer = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-observer", "observer"))
    try:
        for p in (lead, remote, observer):
            assert (await p.connect())["type"] == "joined"
        for peer, role in ((remote, "remote"), (observer, "observer")):
            ref = await peer.send({"type": "end_lesson"})
            err = await peer.expect("error")
            assert err["code"] == "forbidden" and err["re"] == ref, err
            assert role in err["message"] and "end_lesson" in err["message"], err
        # Nothing ended: everybody is still in, and the lesson goes on.
        await asyncio.sleep(0.2)
        assert not any(m["type"] == "lesson_ended" for p in (lead, remote, observer) for m in p.log)
        await remote.send({"type": "raise_hand"})
        floor = await lead.expect("floor")
        while floor["event"]["type"] != "hand_raised":
            floor = await lead.expect("floor")
        assert floor["queue"] == ["demo-remote-1"]
    finally:
        for p in (lead, remote, observer):
            await p.close()


async def test_lead_ends_the_lesson_for_everybody(demo_server: Server) -> None:
    lead = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-lead", "lead"))
    r1 = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-remote-1", "remote"))
    observer = ClassroomPeer(demo_server.base_url, tok(demo_server, "demo-observer", "observer"))
    try:
        joined = await lead.connect()
        # The lead is told the lesson's expected remote classrooms (the demo lesson: three).
        assert [c["classroom_id"] for c in joined["expected"]] == ["demo-remote-1", "demo-remote-2", "demo-remote-3"]
        assert all(c["name"] for c in joined["expected"])
        assert joined["recording"] is False and isinstance(joined["started_at"], int)
        assert 0 <= joined["elapsed_ms"] < 5000
        r1_joined = await r1.connect()
        assert "expected" not in r1_joined  # only the lead needs it
        await observer.connect()
        ref = await lead.send({"type": "end_lesson"})
        mine = await lead.expect("lesson_ended")
        assert mine["re"] == ref and mine["by"] == "demo-lead"
        for peer in (r1, observer):
            ended = await peer.expect("lesson_ended")
            assert ended["by"] == "demo-lead" and ended["name"]
        # Every connection is closed by the server and the room is gone.
        for peer in (lead, r1, observer):
            assert peer.ws is not None
            for _ in range(50):
                if peer.ws.closed:
                    break
                await asyncio.sleep(0.05)
            assert peer.ws.closed
        for _ in range(50):
            if DEMO_LESSON_ID not in demo_server.router.rooms:
                break
            await asyncio.sleep(0.05)
        assert DEMO_LESSON_ID not in demo_server.router.rooms
    finally:
        for p in (lead, r1, observer):
            await p.close()


async def test_expected_is_empty_for_a_lesson_nobody_scheduled(demo_server: Server) -> None:
    lead = ClassroomPeer(demo_server.base_url, tok(demo_server, "l", "lead", lesson="adhoc"))
    try:
        assert (await lead.connect())["expected"] == []
    finally:
        await lead.close()


async def test_recording_is_shown_and_end_lesson_stops_it_at_once(tmp_path: Path) -> None:
    # A long end grace: only end_lesson can stop the recorder within this test.
    srv = await start_server(server_config(tmp_path, recording=True, end_grace_s=600))
    lead = ClassroomPeer(srv.base_url, tok(srv, "lead", "lead", lesson="rec-end"))
    remote = ClassroomPeer(srv.base_url, tok(srv, "r1", "remote", lesson="rec-end"))
    try:
        await lead.connect()
        on = await lead.expect("recording", timeout=20)  # the recorder joined
        assert on["active"] is True
        assert (await remote.connect())["recording"] is True
        coordinator = srv.extras["recording"]
        assert "rec-end" in coordinator.recording
        await lead.send({"type": "end_lesson"})
        await lead.expect("lesson_ended")
        for _ in range(100):
            if "rec-end" not in coordinator.recording:
                break
            await asyncio.sleep(0.1)
        assert "rec-end" not in coordinator.recording, "end_lesson did not stop the recorder"
        # The coordinator forgets the lesson first, then stops its recorder (SIGTERM): the recorder
        # writes its final manifest as it exits, a moment later. Wait for that exit, not the set.
        launcher = coordinator.service.launcher
        for _ in range(100):
            if "rec-end" not in launcher.supervised:
                break
            await asyncio.sleep(0.1)
        assert "rec-end" not in launcher.supervised, "the recorder did not exit after end_lesson"
        assert (srv.config.data_path / "recordings" / "rec-end" / "manifest.json").exists()
    finally:
        for p in (lead, remote):
            await p.close()
        await srv.stop()
