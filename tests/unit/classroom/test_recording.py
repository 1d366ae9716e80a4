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
