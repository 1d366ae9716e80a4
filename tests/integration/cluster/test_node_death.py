"""A node dies (``kill -9``) mid-lesson: its heartbeat stops, the other node declares it dead
after the TTL, closes the connections it relayed to it (the classrooms reconnect, as pages and
bots do by themselves), takes the lesson over on the first join and the classrooms get the lead's
video back. A second lesson held by the surviving node goes on without a freeze, and the
lesson's recording stays one directory with a gap event (the recorder on the new node resumes)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from recorder.catalogue import recordings_root
from recorder.core import GAP_EVENT, MANIFEST_NAME, safe_name
from recorder.manifest import read_manifest
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.redis_server import RedisServer

from .conftest import start_nodes

RECORDING = {"CLASSROOM_RECORDING_ENABLED": "true", "CLASSROOM_RECORDING_EVERY_LESSON": "true",
             "CLASSROOM_RECORDING_END_GRACE_S": "1", "CLASSROOM_ANALYTICS_INTERVAL_S": "30"}


async def _join(url: str, token: str, publish: bool, timeout: float = 20.0) -> ClassroomPeer:
    """Join as a page does after a drop: again until joined (``cluster_unavailable`` is retried)."""
    deadline = time.monotonic() + timeout
    while True:
        peer = ClassroomPeer(url, token)
        joined = await peer.connect()
        if joined["type"] == "joined":
            break
        await peer.close()
        assert time.monotonic() < deadline, joined
        await asyncio.sleep(0.3)
    if publish:
        tracks = [(PatternTrack(), "teacher"), (ToneTrack(220), "teacher")] if joined["role"] == "lead" else \
            [(PatternTrack(160, 120), "students")]
        reply = await peer.publish(tracks)
        assert reply["type"] == "publish_answer", reply
    return peer


async def _dropped(peer: ClassroomPeer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (peer.ws is not None and peer.ws.closed):
        assert time.monotonic() < deadline, "the classroom's connection was not closed"
        await asyncio.sleep(0.05)


def _max_gap(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    points = [start, *inside, end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


async def test_kill_9_of_the_owning_node(redis_server: RedisServer, tmp_path: Path) -> None:
    nodes, signer = start_nodes(tmp_path, redis_server.url, 2, env=RECORDING)
    try:
        a, b = nodes
        peers: list[ClassroomPeer] = []
        try:
            lesson, other = "death-lesson", "death-other"
            # an observer comes in through A first, so A holds the lesson; lead and remote come in through B
            observer = await _join(a.base_url, signer.issue(lesson, "inspector", "observer"), publish=False)
            peers.append(observer)
            lead = await _join(b.base_url, signer.issue(lesson, "lead", "lead"), publish=True)
            remote = await _join(b.base_url, signer.issue(lesson, "r1", "remote"), publish=True)
            peers += [lead, remote]
            # a second lesson, held by B from its first join
            other_lead = await _join(b.base_url, signer.issue(other, "lead2", "lead"), publish=True)
            other_remote = await _join(b.base_url, signer.issue(other, "r2", "remote"), publish=False)
            peers += [other_lead, other_remote]
            assert [int(n.health()["lessons"]) for n in nodes] == [1, 1]
            await remote.wait_frames("video", 10, classroom_id="lead")
            await other_remote.wait_frames("audio", 20, classroom_id="lead2")
            directory = recordings_root(a.data_dir) / safe_name(lesson)
            deadline = time.monotonic() + 20
            while not (directory / MANIFEST_NAME).exists():
                assert time.monotonic() < deadline, f"no recording started in {directory}: {a.log_tail()}"
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # some recorded media before the death

            killed_at = time.monotonic()
            a.kill9()
            await _dropped(remote, 10)
            await _dropped(lead, 1)
            dropped_at = time.monotonic()
            # both come back at once, as pages do
            lead2, remote2 = await asyncio.gather(_join(b.base_url, signer.issue(lesson, "lead", "lead"), publish=True),
                                                  _join(b.base_url, signer.issue(lesson, "r1", "remote"), publish=True))
            peers += [lead2, remote2]
            await remote2.wait_frames("video", 1, classroom_id="lead", timeout=10)
            back_at = min(remote2.first_frame_at.values())
            print(f"node death: connections closed {dropped_at - killed_at:.2f} s after kill -9, lead's video back "
                  f"{back_at - killed_at:.2f} s after it (TTL {3.0:.0f} s, heartbeat 1 s; loaded machine)")
            assert back_at - killed_at < 10.0
            assert int(b.health()["lessons"]) == 2  # B holds both lessons now
            # the lesson held by the surviving node never stopped
            gap = _max_gap(other_remote.audio_frames_at[other_remote.mids("audio", "lead2")[0]], killed_at, back_at)
            print(f"longest audio gap of the surviving node's lesson meanwhile: {gap * 1000:.0f} ms")
            # decoded in this test process, whose own event loop stalls while the new peers handshake
            # (0.49-0.58 s seen on a loaded machine); the 0.5 s acceptance figure is Chromium's
            assert gap < 1.0
            await remote2.wait_frames("video", 20, classroom_id="lead")
            await asyncio.sleep(2.0)
        finally:
            for p in peers:
                await p.close()
        # the recording: one directory, the gap in its manifest
        manifest_path = recordings_root(b.data_dir) / safe_name(lesson) / MANIFEST_NAME
        deadline = time.monotonic() + 20
        while True:
            manifest = read_manifest(manifest_path)
            gaps = [e for e in manifest.events if e.type == GAP_EVENT]
            if gaps or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for n in nodes:
            n.stop()  # the recorder's last writes are in
        assert len(gaps) == 1, [e.to_json() for e in manifest.events]
        gap_ms = int(gaps[0].extra["end_ms"]) - gaps[0].t_ms
        print(f"recording gap: {gap_ms} ms ({gaps[0].extra.get('cause')})")
        assert 0 < gap_ms <= 10_000
        # one directory per lesson, not a second recording of the lesson that moved
        assert sorted(p.name for p in recordings_root(b.data_dir).iterdir() if p.is_dir()) == sorted(
            [safe_name(lesson), safe_name(other)])
    finally:
        for n in nodes:
            n.stop()


async def test_a_stopping_node_hands_its_lessons_over_at_once(redis_server: RedisServer, tmp_path: Path) -> None:
    """SIGTERM (a deploy, a restart): the node leaves the registry before it closes its
    connections, so the classrooms relayed to it reconnect and the other node takes the lesson
    without waiting for the TTL."""
    nodes, signer = start_nodes(tmp_path, redis_server.url, 2)
    a, b = nodes
    lesson = "handover-lesson"
    peers: list[ClassroomPeer] = []
    try:
        observer = await _join(a.base_url, signer.issue(lesson, "inspector", "observer"), publish=False)
        lead = await _join(b.base_url, signer.issue(lesson, "lead", "lead"), publish=True)
        remote = await _join(b.base_url, signer.issue(lesson, "r1", "remote"), publish=False)
        peers += [observer, lead, remote]
        await remote.wait_frames("video", 5, classroom_id="lead")
        assert [int(n.health()["lessons"]) for n in nodes] == [1, 0]
        stopped_at = time.monotonic()
        a.proc.terminate()  # type: ignore[union-attr]
        await _dropped(remote, 5)
        await _dropped(lead, 1)
        assert time.monotonic() - stopped_at < 2.0  # no TTL wait
        lead2, remote2 = await asyncio.gather(_join(b.base_url, signer.issue(lesson, "lead", "lead"), publish=True),
                                              _join(b.base_url, signer.issue(lesson, "r1", "remote"), publish=False))
        peers += [lead2, remote2]
        await remote2.wait_frames("video", 1, classroom_id="lead", timeout=10)
        print(f"graceful stop: the lead's video back {min(remote2.first_frame_at.values()) - stopped_at:.2f} s "
              "after SIGTERM (loaded machine)")
        assert int(b.health()["lessons"]) == 1
    finally:
        for p in peers:
            await p.close()
        for n in nodes:
            n.stop()


async def test_a_join_right_after_a_kill_9_is_not_relayed_to_the_dead_node(redis_server: RedisServer,
                                                                            tmp_path: Path) -> None:
    """A classroom reconnecting before the survivor's next heartbeat (pages reconnect within
    0.1-0.5 s of losing their node): the survivor checks that the holder still has a connection to
    Redis before relaying, finds it has none, and takes the lesson at once (first join answered)."""
    slow = {"CLASSROOM_REDIS_HEARTBEAT_S": "2.5", "CLASSROOM_REDIS_TTL_S": "8"}  # no heartbeat finds it first
    nodes, signer = start_nodes(tmp_path, redis_server.url, 2, env=slow)
    try:
        a, b = nodes
        await asyncio.sleep(11.0)  # past the rules' start-up grace (TTL + heartbeat) and entry age
        lesson = "vanished-lesson"
        first = await _join(a.base_url, signer.issue(lesson, "inspector", "observer"), publish=False)
        assert [int(n.health()["lessons"]) for n in nodes] == [1, 0]
        await asyncio.sleep(0.5)  # within one heartbeat of B, A goes
        a.kill9()
        started = time.monotonic()
        peer = ClassroomPeer(b.base_url, signer.issue(lesson, "lead", "lead"))
        try:
            joined = await asyncio.wait_for(peer.connect(), 10)
            took = time.monotonic() - started
            assert joined["type"] == "joined", joined
            assert int(b.health()["lessons"]) == 1
            assert took < 2.0, took
            assert "dead (found on a join)" in b.log_tail(200)
        finally:
            await peer.close()
            await first.close()
    finally:
        for node in nodes:
            node.stop()
