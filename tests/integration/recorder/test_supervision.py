"""The server supervises its recorder processes (issue #14): ``kill -9`` of a live lesson's
recorder is noticed (reaped, logged, counted), what it left is repaired, a new recorder resumes
the recording in the same directory with a ``recorder_gap`` event; the recorder's token is on
no command line or environment, and a copy of it admits nobody else, before or after the room
closed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from classroom.server import Server, start_server
from recorder.manifest import Manifest, read_manifest
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.recorder.test_crash import assert_audio_covers, audio_covers_video, decoded_until

LESSON = "sup-1"
SECRET = "token-secret-for-the-supervision-test-0123456789"
MAX_LOSS_S = 5.0


@pytest.fixture
async def recording_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.setenv("CLASSROOM_TOKEN_SECRET", SECRET)  # the child must not inherit it
    srv = await start_server(server_config(tmp_path, recording=True, end_grace_s=1.0))
    srv.extras["recording"].service.launcher.backoff_s = 0.3
    try:
        yield srv
    finally:
        await srv.stop()


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


def manifest_of(directory: Path) -> Manifest | None:
    try:
        return read_manifest(directory / "manifest.json")
    except Exception:
        return None


def recorded(directory: Path, suffix: str, segments: int) -> bool:
    """Two tracks whose id ends with ``suffix`` ("" = the first run's) with ``segments`` each."""
    m = manifest_of(directory)
    if m is None:
        return False
    mine = [t for t in m.tracks if t.id.endswith("-2") == (suffix == "-2")]
    return len(mine) == 2 and all(len(t.segments) >= segments for t in mine)


def process_state(pid: int) -> str | None:
    """The process's state letter (``Z`` = zombie), None when it no longer exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


async def metric(srv: Server, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(srv.base_url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def refused(srv: Server, token: str) -> dict[str, Any]:
    thief = ClassroomPeer(srv.base_url, token)
    try:
        return await thief.connect()
    finally:
        await thief.close()


async def test_kill_9_of_the_recorder_restarts_it_repairs_and_records_the_gap(
    recording_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recorder.launcher")
    srv = recording_server
    coordinator = srv.extras["recording"]
    launcher = coordinator.service.launcher
    issued: list[str] = []
    issue = coordinator.signer.issue

    def capture(*args: Any, **kwargs: Any) -> str:
        token = str(issue(*args, **kwargs))
        if kwargs.get("nonce"):
            issued.append(token)
        return token

    coordinator.signer.issue = capture  # observe the tokens the coordinator hands its recorders
    directory = srv.config.data_path / "recordings" / LESSON
    lead = ClassroomPeer(srv.base_url, srv.signer.issue(LESSON, "lead", "lead", "Lead"))
    try:
        assert (await lead.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        # ~14 s before the kill: enough for "all but the last few seconds" to mean something
        await wait_until(lambda: recorded(directory, "", 6), 90, "the recorder records two tracks")
        pid = launcher.pid(LESSON)
        assert pid is not None and issued

        # 3. the token is neither on the child's command line nor in its environment
        token = issued[-1]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert token.encode() not in cmdline and token.encode() not in environ
        assert b"--token\0" not in cmdline and b"--token-fd\0" in cmdline
        assert SECRET.encode() not in environ and b"CLASSROOM_TOKEN_SECRET" not in environ
        # ... and a copy of it, used from another connection, is refused: the real one stays
        reply = await refused(srv, token)
        assert reply["type"] == "error" and reply["code"] == "recorder_refused", reply
        room = srv.router.rooms[LESSON]
        assert [p.role for p in room.participants.values()].count("recorder") == 1

        # 2. kill -9: noticed, reaped, logged, counted, repaired, restarted
        await asyncio.sleep(2.0)
        before = read_manifest(directory / "manifest.json")  # what the recorder had listed
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        await wait_until(lambda: launcher.pid(LESSON) not in (None, pid), 30, "a new recorder process")
        await wait_until(lambda: process_state(pid) is None, 5, f"the dead recorder {pid} reaped")
        assert any("died" in r.getMessage() and "signal 9" in r.getMessage() for r in caplog.records)
        assert any(r.getMessage().startswith("repaired ") for r in caplog.records)
        assert await metric(srv, "classroom_recorder_failures_total") == 1
        assert await metric(srv, "classroom_recorder_restarts_total") == 1
        assert await metric(srv, "classroom_recorder_repairs_total") == 1
        assert await metric(srv, "classroom_recorders_running") == 1
        await wait_until(lambda: recorded(directory, "-2", 2), 60, "the new recorder records into the same directory")
        assert len(issued) == 2 and issued[0] != issued[1]  # a fresh token for the new launch
        assert (await refused(srv, issued[0]))["code"] == "recorder_refused"
    finally:
        await lead.close()
    # the lesson ends: the recorder is stopped cleanly (not restarted), the recording is whole
    await wait_until(lambda: LESSON not in coordinator.recording and not launcher.supervised, 30, "lesson end")
    assert await metric(srv, "classroom_recorder_restarts_total") == 1
    manifest = read_manifest(directory / "manifest.json")
    assert manifest.complete
    kill_ms = (killed - manifest.started_at.timestamp()) * 1000
    first = [t for t in manifest.tracks if not t.id.endswith("-2")]
    second = [t for t in manifest.tracks if t.id.endswith("-2")]
    assert len(first) == 2 and len(second) == 2, [t.id for t in manifest.tracks]
    for track in first:  # what the killed recorder wrote was repaired into a whole file
        path = directory / track.file
        assert track.complete and track.file == f"{track.id}.webm" and path.stat().st_size > 0
        last, count = decoded_until(path, track.kind)
        assert last is not None and count > 10, (track.id, count)
        end_ms = track.start_ms + last * 1000
        # nothing the dead recorder had on disk is lost by the repair ...
        on_disk = sorted((directory / "segments" / track.id).glob("*.webm"))
        frames_on_disk = sum(decoded_until(path, track.kind)[1] for path in on_disk)
        assert count >= frames_on_disk - 2, (track.id, count, frames_on_disk)
        listed = next(t for t in before.tracks if t.id == track.id)
        lost = (kill_ms - end_ms) / 1000
        print(f"{track.id}: decodable until {lost:.2f} s before the kill; {count} frames of {frames_on_disk} "
              f"in {len(on_disk)} segment files; {len(listed.segments)} listed 2 s before the kill")
        # ... and it reaches the last few seconds before the kill; the audio's sound (samples
        # decoded, not only its last frame's time) covers the track's time up to the kill
        assert lost <= MAX_LOSS_S, (track.id, lost)
        if track.kind == "audio":
            assert_audio_covers(path, track.start_ms, kill_ms, MAX_LOSS_S, track.id)
    for track in second:
        assert track.complete and decoded_until(directory / track.file, track.kind)[1] > 0
    audio_covers_video(directory, second, MAX_LOSS_S)
    gaps = [e for e in manifest.events if e.type == "recorder_gap"]
    assert len(gaps) == 1, manifest.events
    gap = gaps[0]
    assert gap.extra["cause"] == "recorder_died" and gap.classroom_id is None
    assert gap.t_ms <= kill_ms + 500 and gap.extra["end_ms"] > kill_ms, (gap, kill_ms)
    print(f"gap: {gap.t_ms / 1000:.2f} s .. {gap.extra['end_ms'] / 1000:.2f} s (kill at {kill_ms / 1000:.2f} s)")
    # after the room closed, no recorder token of the lesson admits anybody
    for token in issued:
        reply = await refused(srv, token)
        assert reply["type"] == "error" and reply["code"] == "recorder_refused", reply


async def test_a_recorder_token_admits_only_the_process_it_was_launched_as(server: Server) -> None:
    access = server.router.recorders

    def issue(nonce: str = "") -> str:
        return server.signer.issue("acc-1", "recorder", "recorder", "recorder", nonce=nonce)

    lead = ClassroomPeer(server.base_url, server.signer.issue("acc-1", "lead", "lead", "Lead"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert (await lead.connect())["type"] == "joined"
        # a validly signed recorder token that the server did not launch
        assert (await refused(server, issue()))["code"] == "recorder_refused"
        # the lesson's grant, but bound to another process: useless from this one
        nonce = access.grant("acc-1")
        access.bind(nonce, other.pid)
        assert (await refused(server, issue(nonce)))["code"] == "recorder_refused"
        # bound to this process: admitted once, and a replay does not evict it
        nonce = access.grant("acc-1")
        access.bind(nonce, os.getpid())
        token = issue(nonce)
        real = ClassroomPeer(server.base_url, token)
        try:
            assert (await real.connect())["type"] == "joined"
            assert (await refused(server, token))["code"] == "recorder_refused"
            room = server.router.rooms["acc-1"]
            assert [p.role for p in room.participants.values()].count("recorder") == 1
            assert real.ws is not None and not real.ws.closed
        finally:
            await real.close()
        # the lesson's recording ended: a fresh grant revoked is refused too
        nonce = access.grant("acc-1")
        access.bind(nonce, os.getpid())
        access.revoke("acc-1")
        assert (await refused(server, issue(nonce)))["code"] == "recorder_refused"
    finally:
        other.kill()
        other.wait()
        await lead.close()
