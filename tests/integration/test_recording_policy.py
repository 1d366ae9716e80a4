"""Recording policy in a real server with real aiortc peers (#15): scheduled lessons are recorded
by default (the bureau's default, a lesson's own switch overrides it), the demo lesson is recorded
and listed, the bureau's recordings API lists them with working playback/report links, and the
free-disk guard stops recording cleanly on a small tmpfs before it fills, then resumes."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from classroom.server import DEMO_LESSON_ID, Server, start_server
from recorder.manifest import read_manifest
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack

CST = timezone(timedelta(hours=8))


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.1)


async def expect_recording(peer: ClassroomPeer, active: bool, timeout: float = 20.0) -> dict[str, Any]:
    """The next ``recording`` message with ``active`` as given."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        msg = await peer.expect("recording", timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if msg["active"] is active and (active or "reason" in msg):
            return msg


def policy_config(tmp_path: Path, demo: bool = True) -> Any:
    config = server_config(tmp_path, demo=demo)
    config.recording.enabled = True  # the default: recording on, nothing forced on every room
    config.recording.end_grace_s = 0.5
    config.analytics.interval_s = 3.0
    return config


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    server = await start_server(policy_config(tmp_path))
    try:
        yield server
    finally:
        await server.stop()


class Bureau:
    def __init__(self, srv: Server, http: aiohttp.ClientSession) -> None:
        store = srv.extras["schedule"]
        bureau = store.list_bureaus()[0]
        _, self.key = store.create_admin(bureau.id, "policy test")
        self.srv, self.http = srv, http

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.srv.base_url + path, json=body,
                                     headers={"Authorization": f"Bearer {self.key}"}) as r:
            return r.status, await r.json(content_type=None)

    async def lesson(self, title: str, **over: Any) -> dict[str, Any]:
        _, school = await self.call("POST", "/api/schools", {"name": f"S {title}"})
        rooms = []
        for name in ("lead", "r1"):
            _, room = await self.call("POST", "/api/classrooms", {"school_id": school["id"], "name": f"{title} {name}"})
            rooms.append(room["id"])
        now = datetime.now(CST).replace(second=0, microsecond=0)
        body = {"subject": "数学", "title": title, "lead_classroom_id": rooms[0], "remote_classroom_ids": [rooms[1]],
                "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=40)).isoformat(),
                **over}
        status, lesson = await self.call("POST", "/api/lessons", body)
        assert status == 201, lesson
        return dict(lesson)

    async def tokens(self, lesson_id: str) -> dict[str, str]:
        status, links = await self.call("GET", f"/api/lessons/{lesson_id}/links")
        assert status == 200, links
        return {x["role"]: x["token"] for x in links["links"]}


def recorded_tracks(directory: Path) -> int:
    try:
        return len(read_manifest(directory / "manifest.json").tracks)
    except (OSError, ValueError):
        return 0


async def a_short_lesson(srv: Server, lead_token: str, remote_token: str, directory: Path,
                         seconds: float = 3.0) -> None:
    """A lead and a remote classroom; ends ``seconds`` after the recorder wrote its first tracks
    (a recorder process takes a few seconds to start on a loaded machine)."""
    lead, remote = ClassroomPeer(srv.base_url, lead_token), ClassroomPeer(srv.base_url, remote_token)
    try:
        assert (await lead.connect())["type"] == "joined"
        assert (await remote.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await remote.wait_frames("video", 5)
        await wait_until(lambda: recorded_tracks(directory) >= 2, 90, f"{directory.name} is being recorded")
        await asyncio.sleep(seconds)
    finally:
        await lead.close()
        await remote.close()


async def test_scheduled_and_demo_lessons_are_recorded_by_default_and_listed(srv: Server) -> None:
    coordinator = srv.extras["recording"]
    async with aiohttp.ClientSession() as http:
        bureau = Bureau(srv, http)
        status, settings = await bureau.call("GET", "/api/settings/recording")
        assert status == 200 and settings["recording_default"] is True and settings["enabled"] is True
        assert settings["retention_days"] == 180.0 and settings["disk_guard"]["min_free_bytes"] == 2 * 1024**3
        recorded = await bureau.lesson("recorded by default")
        assert recorded["recording"] is True  # no "recording" field: the bureau's default (on)
        # the bureau turns its default off: a new lesson is not recorded unless it says so
        status, settings = await bureau.call("PUT", "/api/settings/recording", {"recording_default": False})
        assert status == 200 and settings["recording_default"] is False
        unrecorded = await bureau.lesson("not recorded")
        assert unrecorded["recording"] is False
        override = await bureau.lesson("recorded anyway", recording=True)
        assert override["recording"] is True
        status, _ = await bureau.call("PUT", "/api/settings/recording", {"recording_default": "yes"})
        assert status == 400

        # the recorded lesson: a recorder joins with the first classroom
        tokens = await bureau.tokens(recorded["id"])
        directory = srv.config.data_path / "recordings" / recorded["id"]
        await a_short_lesson(srv, tokens["lead"], tokens["remote"], directory)
        await wait_until(lambda: (directory / "report" / "report.html").exists(), 120, "the lesson is analysed")
        assert read_manifest(directory / "manifest.json").complete

        # the lesson with recording off: nobody records it
        tokens = await bureau.tokens(unrecorded["id"])
        lead = ClassroomPeer(srv.base_url, tokens["lead"])
        assert (await lead.connect())["type"] == "joined"
        await asyncio.sleep(0.5)
        assert unrecorded["id"] not in coordinator.recording
        await lead.close()

        # the demo lesson is recorded too
        demo_lead = srv.signer.issue(DEMO_LESSON_ID, "demo-lead", "lead", "Lead")
        demo_remote = srv.signer.issue(DEMO_LESSON_ID, "demo-remote-1", "remote", "Remote 1")
        demo_dir = srv.config.data_path / "recordings" / DEMO_LESSON_ID
        await a_short_lesson(srv, demo_lead, demo_remote, demo_dir, seconds=2.0)
        await wait_until(lambda: (demo_dir / "manifest.json").exists() and read_manifest(demo_dir / "manifest.json")
                         .complete, 60, "the demo recording is finished")

        # listed: per lesson, per occurrence date, all of the bureau's, and the demo lesson's
        status, body = await bureau.call("GET", f"/api/lessons/{recorded['id']}/recordings")
        assert status == 200 and len(body["recordings"]) == 1, body
        entry = body["recordings"][0]
        assert entry["schedule_lesson_id"] == recorded["id"] and entry["occurrence_id"] == recorded["id"]
        assert entry["complete"] and entry["report_url"] and entry["expires_at"]
        day = entry["date"]
        status, body = await bureau.call("GET", f"/api/lessons/{recorded['id']}/recordings?date={day}")
        assert status == 200 and len(body["recordings"]) == 1
        status, body = await bureau.call("GET", f"/api/lessons/{recorded['id']}/recordings?date=2000-01-01")
        assert status == 200 and body["recordings"] == []
        status, body = await bureau.call("GET", f"/api/lessons/{DEMO_LESSON_ID}/recordings")
        assert status == 200 and body["recordings"][0]["lesson_id"] == DEMO_LESSON_ID, body
        status, body = await bureau.call("GET", "/api/recordings")
        assert status == 200
        assert {r["lesson_id"] for r in body["recordings"]} == {recorded["id"], DEMO_LESSON_ID}
        status, body = await bureau.call("GET", "/api/lessons/demo-nothing/recordings")
        assert status == 404

        # the links work: playback page's manifest, then a track file and the report
        manifest_url = unquote(entry["playback_url"].split("manifest=", 1)[1])
        async with http.get(srv.base_url + manifest_url) as r:
            assert r.status == 200
            manifest = await r.json()
        async with http.get(srv.base_url + manifest["tracks"][0]["file"]) as r:
            assert r.status == 200 and len(await r.read()) > 1000
        async with http.get(srv.base_url + entry["report_url"]) as r:
            assert r.status == 200 and "S-T" in await r.text()
        # no key, no listing
        async with http.get(srv.base_url + "/api/recordings") as r:
            assert r.status == 401


@pytest.fixture
async def small_disk(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    """A 48 MiB tmpfs as the recordings volume; the guard stops recording under 16 MiB free."""
    config = policy_config(tmp_path, demo=False)
    config.recording.every_lesson = True
    config.recording.min_free_bytes = 16 * 1024**2
    config.recording.min_free_percent = 0.0
    config.recording.disk_check_s = 0.3
    recordings = tmp_path / "data" / "recordings"
    recordings.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(recordings)], check=True)
    try:
        server = await start_server(config)
        try:
            yield server, recordings
        finally:
            await server.stop()
    finally:
        subprocess.run(["umount", "-l", str(recordings)], check=False)


async def test_the_free_disk_guard_stops_recording_cleanly_and_resumes(small_disk: tuple[Server, Path]) -> None:
    srv, recordings = small_disk
    coordinator = srv.extras["recording"]
    launcher = coordinator.service.launcher
    lesson = "guard-1"
    lead = ClassroomPeer(srv.base_url, srv.signer.issue(lesson, "lead", "lead", "Lead"))
    remote = ClassroomPeer(srv.base_url, srv.signer.issue(lesson, "r1", "remote", "Remote"))
    ballast = recordings / "ballast.bin"
    try:
        assert (await lead.connect())["type"] == "joined"
        assert (await remote.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await wait_until(lambda: launcher.pid(lesson) is not None, 30, "the recorder starts")
        await expect_recording(lead, True, timeout=90)
        await wait_until(lambda: recorded_tracks(recordings / lesson) >= 2, 90, "the recording has tracks")
        await asyncio.sleep(2)
        # something else fills the volume to 36 MiB of 48: under the guard's 16 MiB free
        with ballast.open("wb") as f:
            f.write(b"\0" * (36 * 1024**2))
        filled = asyncio.get_running_loop().time()
        stopped = await expect_recording(lead, False, timeout=60)
        took = asyncio.get_running_loop().time() - filled
        print(f"free-disk guard: recording stopped, lead told {took:.2f} s after the volume went under the limit")
        assert stopped["reason"] == "disk_low" and "disk" in stopped["message"], stopped
        assert launcher.pid(lesson) is None and lesson in coordinator.held
        manifest = read_manifest(recordings / lesson / "manifest.json")
        assert manifest.complete, "the recorder was stopped cleanly: manifest finalized"
        assert coordinator.stats.guard_stops == 1
        async with aiohttp.ClientSession() as http, http.get(srv.base_url + "/metrics") as r:
            text = await r.text()
        assert "classroom_recording_disk_guard_stops_total 1.0" in text
        assert "classroom_recording_disk_guard_active 1.0" in text
        st = os.statvfs(recordings)
        assert st.f_bavail * st.f_frsize > 8 * 1024**2, "the guard never let the disk fill"
        # room again: the recording resumes in the same directory
        ballast.unlink()
        await expect_recording(lead, True, timeout=90)
        await wait_until(lambda: launcher.pid(lesson) is not None, 30, "the recorder starts again")
        assert coordinator.stats.guard_resumes == 1
    finally:
        await lead.close()
        await remote.close()
