"""Start and stop recorder worker processes from the server (``classroom serve``).

Each recorded lesson gets its own ``classroom record --url .. --token ..`` process, so a crash
or a slow disk never touches the SFU, and the SFU's CPU is not the recorder's. The server issues
a token with role ``recorder`` for the lesson and calls :meth:`RecorderLauncher.start`.

Wiring (for ``classroom/server.py``)::

    launcher = RecorderLauncher(ws_url=f"ws://{host}:{port}/ws", data_dir=config.data_path,
                                segment_seconds=config.recording.segment_seconds)
    launcher.start(lesson_id, signer.issue(lesson_id, "recorder", "recorder", "录制"))
    ...
    await launcher.stop_all()   # on shutdown: SIGTERM, the recorders finalize their files
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class RecorderLauncher:
    ws_url: str
    data_dir: Path
    segment_seconds: float = 2.0
    log_level: str = "WARNING"
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def command(self, token: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "classroom.cli",
            "record",
            "--url",
            self.ws_url,
            "--token",
            token,
            "--data-dir",
            str(self.data_dir),
            "--segment-seconds",
            str(self.segment_seconds),
            "--log-level",
            self.log_level,
        ]

    def start(self, lesson_id: str, token: str) -> subprocess.Popen[bytes]:
        """Start recording ``lesson_id`` (no-op if its recorder is already running)."""
        current = self.processes.get(lesson_id)
        if current is not None and current.poll() is None:
            return current
        process = subprocess.Popen(
            self.command(token),
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.processes[lesson_id] = process
        log.info("recorder for lesson %s started (pid %d)", lesson_id, process.pid)
        return process

    def running(self, lesson_id: str) -> bool:
        process = self.processes.get(lesson_id)
        return process is not None and process.poll() is None

    async def stop(self, lesson_id: str, timeout: float = 15.0) -> int | None:
        """SIGTERM (clean stop: trailers, final manifest), SIGKILL after ``timeout``."""
        process = self.processes.pop(lesson_id, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, process.wait), timeout)
        except TimeoutError:
            log.warning("recorder for lesson %s did not stop; killing it", lesson_id)
            process.kill()
            return await loop.run_in_executor(None, process.wait)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(lesson) for lesson in list(self.processes)))
