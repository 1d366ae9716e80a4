"""When lessons are recorded and analysed: the recorder starts when the first classroom of a
lesson with recording on joins, stops when the last classroom has been gone for a grace period
(classrooms reconnect), and then the classroom-behaviour analysis runs on the recording in its own
process (never on the SFU's event loop)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from recorder.catalogue import recordings_root
from recorder.core import safe_name
from recorder.service import RecordingService
from signaling.room import Room
from signaling.tokens import TokenSigner

log = logging.getLogger(__name__)


class RecordingCoordinator:
    def __init__(
        self,
        service: RecordingService,
        signer: TokenSigner,
        data_dir: Path,
        wanted: Callable[[str], bool],
        grace_s: float = 60.0,
        analytics_interval_s: float = 30.0,
    ) -> None:
        self.service = service
        self.signer = signer
        self.data_dir = data_dir
        self.wanted = wanted
        self.grace_s = grace_s
        self.analytics_interval_s = analytics_interval_s
        self.recording: set[str] = set()
        self._ending: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # what analyses a finished recording (a separate process, never this event loop)
        self.analyze_command = [sys.executable, "-m", "classroom.cli", "analyze"]

    def presence_changed(self, room: Room) -> None:
        lesson = room.lesson_id
        present = any(p.visible for p in room.participants.values())
        if present:
            pending = self._ending.pop(lesson, None)
            if pending is not None:
                pending.cancel()
            if lesson not in self.recording and self.wanted(lesson):
                token = self.signer.issue(lesson, "recorder", "recorder", "录制 Recorder",
                                          lesson_title=room.title)
                self.service.lesson_started(lesson, token)
                self.recording.add(lesson)
                log.info("recording lesson %s", lesson)
        elif lesson in self.recording and lesson not in self._ending:
            loop = asyncio.get_running_loop()
            self._ending[lesson] = loop.call_later(self.grace_s, self._end_soon, lesson)

    def _end_soon(self, lesson: str) -> None:
        self._ending.pop(lesson, None)
        task = asyncio.get_running_loop().create_task(self.end(lesson))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end(self, lesson: str) -> None:
        """Stop the recorder, then analyse what it wrote."""
        if lesson not in self.recording:
            return
        self.recording.discard(lesson)
        await self.service.lesson_ended(lesson)
        summaries = self.service.recordings(lesson)
        if not summaries:
            log.warning("lesson %s ended but left no recording", lesson)
            return
        directory = recordings_root(self.data_dir) / safe_name(lesson)
        await self.analyze(directory)

    async def analyze(self, directory: Path) -> int:
        out = directory / "report"
        proc = await asyncio.create_subprocess_exec(
            *self.analyze_command, str(directory), "--out", str(out),
            "--interval", str(self.analytics_interval_s),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await proc.communicate()
        except asyncio.CancelledError:  # the server is stopping: no orphan, and say how to redo it
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            log.warning("analysis of %s interrupted by shutdown; run `classroom analyze %s --out %s`",
                        directory, directory, out)
            raise
        if proc.returncode:
            log.warning("analysis of %s failed: %s", directory, err.decode(errors="replace")[-500:])
        else:
            log.info("analysis of %s written to %s", directory, out)
        return int(proc.returncode or 0)

    async def stop_all(self) -> None:
        for handle in self._ending.values():
            handle.cancel()
        self._ending.clear()
        await self.service.stop_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # wait for them: an analysis subprocess is killed and reaped before the loop closes
        await asyncio.gather(*tasks, return_exceptions=True)
