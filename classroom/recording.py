"""When lessons are recorded and analysed: the recorder starts when the first classroom of a
lesson with recording on joins, stops when the last classroom has been gone for a grace period
(classrooms reconnect), and then the classroom-behaviour analysis runs on the recording in its own
process (never on the SFU's event loop)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recorder.catalogue import recordings_root
from recorder.core import safe_name
from recorder.launcher import CredentialSource, RecorderCredentials, RecorderStats
from recorder.service import RecordingService
from signaling.recorder_access import RecorderAccess
from signaling.room import Room
from signaling.tokens import TokenSigner

log = logging.getLogger(__name__)

# A recorder token only has to last from its launch to its join (a restart gets a new one).
RECORDER_TOKEN_TTL_S = 120.0


class RecordingCoordinator:
    def __init__(
        self,
        service: RecordingService,
        signer: TokenSigner,
        data_dir: Path,
        wanted: Callable[[str], bool],
        grace_s: float = 60.0,
        analytics_interval_s: float = 30.0,
        access: RecorderAccess | None = None,
    ) -> None:
        self.service = service
        self.access = access or RecorderAccess()
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
                self.service.lesson_started(lesson, self._credentials(lesson, room.title))
                self.recording.add(lesson)
                log.info("recording lesson %s", lesson)
        elif lesson in self.recording and lesson not in self._ending:
            loop = asyncio.get_running_loop()
            self._ending[lesson] = loop.call_later(self.grace_s, self._end_soon, lesson)

    def _credentials(self, lesson: str, title: str) -> CredentialSource:
        """A fresh short-lived token for each launch, bound to the lesson by a nonce the server
        remembers and, once started, to the recorder's process (signaling/recorder_access.py)."""

        def issue() -> RecorderCredentials:
            nonce = self.access.grant(lesson)
            token = self.signer.issue(
                lesson, "recorder", "recorder", "录制 Recorder", lesson_title=title,
                expires=time.time() + RECORDER_TOKEN_TTL_S, nonce=nonce,
            )  # fmt: skip
            return RecorderCredentials(token, bind=lambda pid: self.access.bind(nonce, pid))

        return issue

    def room_closed(self, room: Room) -> None:
        """No recorder token of a closed room is any good any more."""
        if room.lesson_id not in self.recording:
            self.access.revoke(room.lesson_id)

    def register_metrics(self, app: web.Application) -> None:
        """Add ``classroom_recorder_*`` to the server's ``/metrics`` (if metrics are wired)."""
        from classroom.metrics import METRICS_REGISTRY

        registry = app.get(METRICS_REGISTRY)
        if registry is not None:
            registry.register(RecorderCollector(self.service.launcher.stats, self.access))

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
        self.access.revoke(lesson)
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
        for lesson in list(self.recording):
            self.access.revoke(lesson)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # wait for them: an analysis subprocess is killed and reaped before the loop closes
        await asyncio.gather(*tasks, return_exceptions=True)


class RecorderCollector(Collector):
    """``classroom_recorder_*``: the supervision counters (alert on failures / gave_up)."""

    def __init__(self, stats: RecorderStats, access: RecorderAccess) -> None:
        self.stats = stats
        self.access = access

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())

    def collect(self) -> Iterable[Metric]:
        s = self.stats
        counters = (
            ("classroom_recorder_failures", "recorder processes that ended without being asked to", s.failures),
            ("classroom_recorder_restarts", "recorder processes restarted after a failure", s.restarts),
            ("classroom_recorder_repairs", "repairs run on what a dead recorder left", s.repairs),
            ("classroom_recorder_repair_failures", "repairs that failed or did not finish", s.repair_failures),
            ("classroom_recorder_gave_up", "lessons whose recorder stayed dead after the restart limit", s.gave_up),
            ("classroom_recorder_disk_full", "recorders stopped because the recording directory was full",
             s.disk_full),
            ("classroom_recorder_joins_refused", "recorder joins refused (not the server's own launch)",
             self.access.refused),
        )  # fmt: skip
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("classroom_recorders_running", "recorder processes running", value=s.running)
