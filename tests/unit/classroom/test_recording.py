"""RecordingCoordinator's shutdown: a running analysis process is killed and reaped, not orphaned."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from classroom.recording import RecordingCoordinator
from signaling.tokens import TokenSigner


class FakeService:
    """Stands in for recorder.service.RecordingService (no recorder processes)."""

    def __init__(self) -> None:
        self.stopped = False

    async def stop_all(self) -> None:
        self.stopped = True


SLOW_ANALYSIS = [sys.executable, "-c",
                 "import os, sys, time; open(os.path.join(sys.argv[1], 'pid'), 'w').write(str(os.getpid())); "
                 "time.sleep(60)"]  # fmt: skip


async def test_stop_all_kills_a_running_analysis(tmp_path: Path) -> None:
    service = FakeService()
    coord = RecordingCoordinator(service, TokenSigner(b"x" * 32), tmp_path, wanted=lambda lesson: True)  # type: ignore[arg-type]
    coord.analyze_command = SLOW_ANALYSIS
    task = asyncio.get_running_loop().create_task(coord.analyze(tmp_path))  # type: ignore[arg-type]
    coord._tasks.add(task)  # type: ignore[arg-type]
    pid_file = tmp_path / "pid"
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the analysis process did not start"
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    started = time.monotonic()
    await coord.stop_all()
    assert time.monotonic() - started < 10 and service.stopped and task.cancelled()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass  # killed and reaped
    else:
        raise AssertionError(f"analysis process {pid} still exists")


async def test_retention_sweep_spares_the_lessons_being_recorded(tmp_path: Path) -> None:
    """The coordinator's sweep (fake clock): old recordings go, one being recorded now stays."""
    from datetime import UTC, datetime

    from classroom.recording import RetentionPolicy
    from recorder.manifest import Manifest, write_manifest

    now = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    for name in ("old", "live-now", "new"):
        (tmp_path / "recordings" / name).mkdir(parents=True)
        days = 1 if name == "new" else 30
        start = datetime.fromtimestamp(now - days * 86400, UTC)
        write_manifest(tmp_path / "recordings" / name / "manifest.json", Manifest(name, "t", start, 1000))
    coord = RecordingCoordinator(FakeService(), TokenSigner(b"x" * 32), tmp_path, wanted=lambda lesson: True,  # type: ignore[arg-type]
                                 retention=RetentionPolicy(days=7, sweep_s=3600, clock=lambda: now))
    coord.recording.add("live-now")
    result = await coord.sweep_now()
    assert [e.directory.name for e in result.deleted] == ["old"]
    assert sorted(p.name for p in (tmp_path / "recordings").iterdir()) == ["live-now", "new"]
    assert coord.stats.retention_deleted == 1 and coord.stats.retention_sweeps == 1
