"""The live recorder joins a real lesson (real WebSocket, ICE/DTLS/SRTP through the SFU) as the
``recorder`` participant and records every track without decoding; floor events land in the
manifest's timeline."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import av

from classroom.server import Server
from recorder.manifest import read_manifest
from recorder.worker import LiveRecorder
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


def token(server: Server, classroom: str, role: str, name: str = "") -> str:
    return server.signer.issue("rec-lesson", classroom, role, name or classroom, lesson_title="录制测试")


def recorder_token(server: Server, pid: int | None = None) -> str:
    """A recorder token the server admits: a launch it granted, bound to the joining process
    (here the test process itself, which runs the LiveRecorder)."""
    nonce = server.router.recorders.grant("rec-lesson")
    server.router.recorders.bind(nonce, os.getpid() if pid is None else pid)
    return server.signer.issue("rec-lesson", "recorder", "recorder", "recorder", nonce=nonce)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def test_live_recorder_records_a_lesson(server: Server, tmp_path: Path) -> None:
    lead = ClassroomPeer(server.base_url, token(server, "lead", "lead", "主讲课堂"))
    remote = ClassroomPeer(server.base_url, token(server, "r1", "remote", "教学点一"))
    out = tmp_path / "rec"
    recorder = LiveRecorder(
        server.base_url.replace("http", "ws", 1) + "/ws",
        recorder_token(server),
        tmp_path,
        out=out,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(recorder.run(stop))
    try:
        assert (await lead.connect())["type"] == "joined"
        assert (await remote.connect())["type"] == "joined"
        answer = await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        assert answer["type"] == "publish_answer", answer
        answer = await remote.publish([(PatternTrack(160, 120), "students"), (ToneTrack(880), "students")])
        assert answer["type"] == "publish_answer", answer
        await wait_until(
            lambda: (
                recorder.session is not None
                and len([t for t in recorder.session.tracks.values() if t.stats.frames > 20]) == 4
            ),
            30,
            f"4 recorded tracks: {recorder.mids}",
        )
        await remote.send({"type": "raise_hand"})
        await asyncio.sleep(0.5)
        await lead.send({"type": "grant_floor", "classroom_id": "r1"})
        await asyncio.sleep(3.0)
        await lead.send({"type": "revoke_floor", "classroom_id": "r1"})
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        code = await asyncio.wait_for(task, 20)
        await lead.close()
        await remote.close()
    assert code == 0
    assert recorder.unrouted_packets == 0
    assert recorder.session is not None
    # the SFU's sender reports reached every track: start_ms comes from NTP<->RTP, not arrival
    assert all(t.start_from_sr for t in recorder.session.tracks.values())
    manifest = read_manifest(out / "manifest.json")
    assert manifest.complete and manifest.lesson_id == "rec-lesson"
    assert {c.id: c.role for c in manifest.classrooms} == {"lead": "lead", "r1": "remote"}
    kinds = sorted((t.classroom_id, t.kind, t.codec, t.source) for t in manifest.tracks)
    assert kinds == [
        ("lead", "audio", "opus", "teacher"),
        ("lead", "video", "vp8", "teacher"),
        ("r1", "audio", "opus", "students"),
        ("r1", "video", "vp8", "students"),
    ], kinds
    types = [e.type for e in manifest.events]
    for expected in ("hand_raised", "floor_granted", "floor_revoked"):
        assert expected in types, types
    for track in manifest.tracks:
        with av.open(str(out / track.file)) as container:
            stream = container.streams[0]
            assert stream.codec_context.name == track.codec
            frames = sum(1 for _ in container.decode(stream))
        assert frames > 10, (track.id, frames)
        # the test tone runs in real time (it once ran at a sixth of it: docs/reliability.md)
        assert track.end_ms - track.start_ms > 3000, (track.id, track.start_ms, track.end_ms)


async def test_launcher_runs_classroom_record_as_its_own_process(server: Server, tmp_path: Path) -> None:
    from recorder.launcher import RecorderCredentials, RecorderLauncher

    data_dir = tmp_path / "data"
    launcher = RecorderLauncher(server.base_url.replace("http", "ws", 1) + "/ws", data_dir)
    lead = ClassroomPeer(server.base_url, token(server, "lead", "lead", "主讲课堂"))
    try:
        assert (await lead.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        def credentials() -> RecorderCredentials:
            nonce = server.router.recorders.grant("rec-lesson")
            token = server.signer.issue("rec-lesson", "recorder", "recorder", "recorder", nonce=nonce)
            return RecorderCredentials(token, bind=lambda pid: server.router.recorders.bind(nonce, pid))

        launcher.start("rec-lesson", credentials)
        await wait_until(lambda: launcher.running("rec-lesson"), 10, "the recorder process runs")
        manifest_path = data_dir / "recordings" / "rec-lesson" / "manifest.json"

        def two_tracks() -> bool:
            try:
                return len(read_manifest(manifest_path).tracks) == 2
            except Exception:
                return False

        await wait_until(two_tracks, 40, "the recorder process records two tracks")
        pid = launcher.processes["rec-lesson"].pid
        cpu0, t0 = process_cpu(pid), time.monotonic()
        await asyncio.sleep(4.0)
        per_track = (process_cpu(pid) - cpu0) / (time.monotonic() - t0) / 2
        print(f"live recorder process CPU: {per_track * 100:.2f}% of a core per track")
        assert await launcher.stop("rec-lesson") == 0
    finally:
        await launcher.stop_all()
        await lead.close()
    manifest = read_manifest(manifest_path)
    assert manifest.complete
    for track in manifest.tracks:
        with av.open(str(manifest_path.parent / track.file)) as container:
            assert container.streams[0].codec_context.name == track.codec


async def test_live_recorder_repairs_loss_with_nack(server: Server, tmp_path: Path) -> None:
    from tests.integration.peers import make_lossy

    lead = ClassroomPeer(server.base_url, token(server, "lead", "lead", "主讲课堂"))
    out = tmp_path / "rec"
    recorder = LiveRecorder(
        server.base_url.replace("http", "ws", 1) + "/ws", recorder_token(server), tmp_path, out=out
    )
    stop = asyncio.Event()
    task = asyncio.create_task(recorder.run(stop))
    try:
        assert (await lead.connect())["type"] == "joined"
        await wait_until(lambda: recorder._pc is not None or recorder.session is not None, 10, "joined")
        await lead.publish([(PatternTrack(), "teacher")])
        await wait_until(lambda: recorder._pc is not None, 15, "subscribe offer")
        make_lossy(recorder._pc, 0.05)
        await wait_until(
            lambda: (
                recorder.session is not None and any(t.stats.frames > 120 for t in recorder.session.tracks.values())
            ),
            40,
            "recorded video frames",
        )
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
        await lead.close()
    assert recorder.session is not None
    (video,) = recorder.session.tracks.values()
    print(f"loss 5%: {video.stats}, {video.jitter.stats}")
    assert video.stats.nacks > 0
    # most holes were filled by retransmissions before the reorder buffer gave up on them
    assert video.jitter.stats.lost < video.stats.nacks / 2, (video.stats, video.jitter.stats)
    manifest = read_manifest(out / "manifest.json")
    with av.open(str(out / manifest.tracks[0].file)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 100
