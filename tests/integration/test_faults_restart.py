"""Fault: ``kill -9`` of ``classroom serve`` and a restart on the same data directory and port.
The schedule (a lesson made through the API), the administrator's key and the join tokens the
API issued before the crash (the token secret lives in the data dir) all survive; page-like aiortc
clients reconnect with their old links and get media again. A recorded lesson: what the recorder
wrote until the crash stays readable (repaired if the recorder died with the server), the
orphaned recorder goes away by itself, and once the classrooms rejoin the restarted server a new
recorder resumes the recording in the same directory, with a ``recorder_gap`` event."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from recorder.manifest import Manifest, read_manifest
from tests.e2e.conftest import free_port
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.recorder.test_crash import assert_audio_covers, audio_covers_video, decoded_until

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"\b(cka_[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+)")


def start(data: Path, port: int, log: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CLASSROOM_TOKEN_SECRET"}  # the secret of the data dir
    env["CLASSROOM_MEDIA_UDP_PORT"] = "0"  # a media port of its own (tests may run side by side)
    env.update(extra_env)
    proc = subprocess.Popen([sys.executable, "-m", "classroom.cli", "serve", "--port", str(port), "--data-dir",
                             str(data), "--no-demo", "--log-level", "WARNING"],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start")


def api(port: int, key: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def lesson_media(url: str, lead_token: str, remote_token: str) -> tuple[ClassroomPeer, ClassroomPeer]:
    lead, remote = ClassroomPeer(url, lead_token), ClassroomPeer(url, remote_token)
    assert (await lead.connect())["type"] == "joined"
    assert (await remote.connect())["type"] == "joined"
    await lead.publish([(PatternTrack(), "teacher")])
    await remote.wait_frames("video", 5)
    return lead, remote


async def test_kill_9_and_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    data, log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port, log)
    peers: list[ClassroomPeer] = []
    try:
        m = KEY.search(log.read_text())
        assert m, log.read_text()
        key = m.group(1)
        school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
        lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
        remote_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1"})["id"]
        cst = timezone(timedelta(hours=8))
        now = datetime.now(cst).replace(second=0, microsecond=0)
        lesson = api(port, key, "POST", "/api/lessons", {
            "subject": "s", "title": "crash", "lead_classroom_id": lead_room, "remote_classroom_ids": [remote_room],
            "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=40)).isoformat(),
        })["id"]
        links = {x["role"]: x["token"] for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"]}
        peers[:] = await lesson_media(url, links["lead"], links["remote"])

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for p in peers:
            await p.close()
        proc = start(data, port, log)

        assert any(x["id"] == lesson for x in api(port, key, "GET", "/api/lessons")["lessons"])  # schedule + key
        peers[:] = await lesson_media(url, links["lead"], links["remote"])  # the old links, media again
        assert "Traceback" not in log.read_text()
    finally:
        for p in peers:
            await p.close()
        proc.terminate()
        proc.wait(10)


MAX_LOSS_S = 5.0  # the issue: nothing beyond the last few seconds lost


def make_lesson(port: int, key: str) -> tuple[str, dict[str, str]]:
    school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
    lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
    remote_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1"})["id"]
    cst = timezone(timedelta(hours=8))
    now = datetime.now(cst).replace(second=0, microsecond=0)
    lesson = api(port, key, "POST", "/api/lessons", {
        "subject": "s", "title": "crash", "lead_classroom_id": lead_room, "remote_classroom_ids": [remote_room],
        "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=40)).isoformat(),
        "recording": True,
    })["id"]
    links = {x["role"]: x["token"] for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"]}
    return lesson, links


def recorder_pids(server_pid: int) -> list[int]:
    """The ``classroom record`` children of the server."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == server_pid and b"record\0" in cmdline:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def the_manifest(recordings: Path) -> tuple[Path, Manifest] | None:
    for path in recordings.glob("*/manifest.json"):
        try:
            return path.parent, read_manifest(path)
        except Exception:  # being written: read it again
            return None
    return None


async def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


def recorded(recordings: Path, second_run: bool, segments: int) -> bool:
    found = the_manifest(recordings)
    if found is None:
        return False
    mine = [t for t in found[1].tracks if t.id.endswith("-2") == second_run]
    return len(mine) >= 2 and all(len(t.segments) >= segments for t in mine)


def recording_summary(recordings: Path) -> str:
    """Where each track of the recording ends and the lesson's timeline stands (for a failure
    message: a recording that stopped early shows where its media stopped arriving)."""
    found = the_manifest(recordings)
    if found is None:
        return "no readable manifest"
    manifest = found[1]
    tracks = ", ".join(f"{t.id} {t.start_ms}..{t.end_ms} ms ({len(t.segments)} segments)" for t in manifest.tracks)
    return f"timeline at {manifest.duration_ms} ms; {tracks}"


@pytest.mark.parametrize("killed", ["server", "server_and_recorder"])
async def test_kill_9_of_the_server_during_a_recorded_lesson(tmp_path: Path, killed: str) -> None:
    """``server``: only ``classroom serve`` dies (its recorder loses the signaling connection and
    ends its recording itself). ``server_and_recorder``: both die at once (a killed process group,
    an OOM-killed container): nothing is finalised, and the next recorder repairs the files."""
    data, log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    url = f"http://127.0.0.1:{port}"
    recordings = data / "recordings"
    grace = {"CLASSROOM_RECORDING_END_GRACE_S": "2",  # the recording ends 2 s after the last classroom left
             # one recorder child to count and kill: no standby recorder beside it (docs/recording.md)
             "CLASSROOM_RECORDING_STANDBY_RECORDER": "false"}
    proc = start(data, port, log, **grace)
    peers: list[ClassroomPeer] = []
    try:
        m = KEY.search(log.read_text())
        assert m, log.read_text()
        lesson, links = make_lesson(port, m.group(1))

        async def join() -> None:
            lead, remote = ClassroomPeer(url, links["lead"]), ClassroomPeer(url, links["remote"])
            peers[:] = [lead, remote]
            assert (await lead.connect())["type"] == "joined"
            assert (await remote.connect())["type"] == "joined"
            await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
            await remote.wait_frames("video", 5)

        await join()
        # ~14 s of lesson before the kill: enough for "all but the last few seconds" to mean something
        try:
            await wait_for(lambda: recorded(recordings, False, 7), 90, "the recorder records the lead's two tracks")
        except AssertionError as exc:
            # did the remote classroom still get media (a stalled publisher) or not only the recorder?
            raise AssertionError(f"{exc}: {recording_summary(recordings)}; the remote classroom decoded "
                                 f"{dict(peers[1].frames)} frames by mid") from None
        pids = recorder_pids(proc.pid)
        assert len(pids) == 1, pids
        (recorder,) = pids

        if killed == "server_and_recorder":
            # frozen first: the server's death sends the recorder SIGTERM (PR_SET_PDEATHSIG), and on a
            # busy machine this process can be preempted between the two kills long enough for the
            # recorder to finalise cleanly; stopped, it dies with nothing written, as "at once" means
            os.kill(recorder, signal.SIGSTOP)
        os.kill(proc.pid, signal.SIGKILL)
        if killed == "server_and_recorder":
            os.kill(recorder, signal.SIGKILL)
        killed_at = time.time()
        proc.wait(10)
        for p in peers:
            await p.close()
        # no orphan keeps writing into the directory the next recorder will use
        await wait_for(lambda: not alive(recorder), 30, f"the orphaned recorder {recorder} exits")
        directory, before = await wait_for(lambda: the_manifest(recordings), 5, "a readable manifest")
        assert before.complete == (killed == "server"), before  # finalised by the recorder itself, or not

        proc = start(data, port, log, **grace)
        await join()  # the classrooms come back with their old links
        await wait_for(lambda: recorded(recordings, True, 2), 60, "a new recorder resumes the recording")
        assert len(recorder_pids(proc.pid)) == 1
        for p in peers:
            await p.close()
        peers.clear()
        # the last classroom left: the lesson's recording ends and the manifest is whole
        await wait_for(lambda: not recorder_pids(proc.pid), 60, "the recorder stops when everybody left")
        found = the_manifest(recordings)
        assert found is not None and found[0] == directory
        manifest = found[1]
        assert manifest.complete, manifest
        kill_ms = (killed_at - manifest.started_at.timestamp()) * 1000
        first = [t for t in manifest.tracks if not t.id.endswith("-2")]
        second = [t for t in manifest.tracks if t.id.endswith("-2")]
        assert len(first) == 2 and len(second) == 2, [t.id for t in manifest.tracks]
        for track in first:  # what was written before the crash: one whole, decodable file
            path = directory / track.file
            assert track.complete and path.stat().st_size > 0, track
            last, count = decoded_until(path, track.kind)
            assert last is not None and count > 10, (track.id, count)
            lost = (kill_ms - (track.start_ms + last * 1000)) / 1000
            print(f"{killed}: {track.id} decodable until {lost:.2f} s before the kill ({count} frames)")
            assert lost <= MAX_LOSS_S, (track.id, lost)
            if track.kind == "audio":  # the sound itself (samples decoded) covers the time up to the kill
                assert_audio_covers(path, track.start_ms, kill_ms, MAX_LOSS_S, f"{killed}: {track.id}")
        for track in second:
            assert track.complete and decoded_until(directory / track.file, track.kind)[1] > 0, track
        audio_covers_video(directory, second, MAX_LOSS_S)
        gaps = [e for e in manifest.events if e.type == "recorder_gap"]
        assert len(gaps) == 1, manifest.events
        assert gaps[0].extra["cause"] == ("recorder_restarted" if killed == "server" else "recorder_died")
        assert gaps[0].t_ms <= kill_ms + 500 < gaps[0].extra["end_ms"] + 500, (gaps[0], kill_ms)
        assert "Traceback" not in log.read_text()
    finally:
        for p in peers:
            await p.close()
        proc.terminate()
        proc.wait(10)
