"""Disk full in the recording directory (issue #14): the recording directory is a tiny tmpfs.
The lesson goes on, the recorder stops cleanly with a clear error and an alert metric, it is not
restarted, and what it had written stays readable."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from classroom.server import Server, start_server
from recorder.manifest import read_manifest
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.recorder.test_crash import decoded_until
from tests.integration.recorder.test_supervision import metric, wait_until

LESSON = "full-1"
TMPFS_SIZE = "96k"


@pytest.fixture
async def small_disk_server(tmp_path: Path) -> AsyncIterator[Server]:
    config = server_config(tmp_path, recording=True, end_grace_s=1.0)
    config.recording.min_free_bytes = 0  # the free-disk guard off: this test is about ENOSPC itself
    config.recording.min_free_percent = 0.0
    recordings = tmp_path / "data" / "recordings"
    recordings.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(recordings)],
                   check=True)  # fmt: skip
    try:
        srv = await start_server(config)
        try:
            yield srv
        finally:
            await srv.stop()
    finally:
        subprocess.run(["umount", "-l", str(recordings)], check=False)


async def test_a_full_recording_disk_stops_the_recorder_cleanly_and_the_lesson_goes_on(
    small_disk_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recorder.launcher")
    srv = small_disk_server
    launcher = srv.extras["recording"].service.launcher
    directory = srv.config.data_path / "recordings" / LESSON
    lead = ClassroomPeer(srv.base_url, srv.signer.issue(LESSON, "lead", "lead", "Lead"))
    remote = ClassroomPeer(srv.base_url, srv.signer.issue(LESSON, "r1", "remote", "Remote"))
    try:
        assert (await lead.connect())["type"] == "joined"
        assert (await remote.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await wait_until(lambda: launcher.pid(LESSON) is not None, 30, "the recorder starts")
        pid = launcher.pid(LESSON)
        started = time.monotonic()

        def stopped() -> bool:
            entry: Any = launcher.supervised.get(LESSON)
            return entry is not None and entry.task is not None and entry.task.done()

        await wait_until(stopped, 90, "the recorder stops when the disk is full")
        print(f"recorder stopped {time.monotonic() - started:.1f} s after its start (tmpfs {TMPFS_SIZE})")
        entry = launcher.supervised[LESSON]
        assert entry.exit_codes == [3] and entry.pids == [pid]  # EXIT_DISK_FULL, not restarted
        assert await metric(srv, "classroom_recorder_disk_full_total") == 1
        assert await metric(srv, "classroom_recorder_restarts_total") == 0
        assert await metric(srv, "classroom_recorder_failures_total") == 0
        assert await metric(srv, "classroom_recorders_running") == 0
        assert any("is full" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        # the lesson goes on: the remote classroom still gets the lead's video
        before = sum(remote.frames.values())
        await asyncio.sleep(2.0)
        assert sum(remote.frames.values()) > before + 10
        assert lead.ws is not None and not lead.ws.closed
    finally:
        await lead.close()
        await remote.close()
    # what was written before the disk filled up is still there and readable
    manifest = read_manifest(directory / "manifest.json")
    assert {t.kind for t in manifest.tracks} == {"audio", "video"}
    decoded = 0
    for track in manifest.tracks:
        for segment in track.segments[:-1]:  # every finished segment decodes
            last, count = decoded_until(directory / segment.file, track.kind)
            assert count > 0, segment.file
            decoded += count
    assert decoded > 0
    print(f"{decoded} frames decodable in finished segments; tracks: "
          f"{[(t.id, len(t.segments)) for t in manifest.tracks]}")
