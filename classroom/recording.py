"""When lessons are recorded and analysed: the recorder starts when the first classroom of a
lesson with recording on joins, stops when the last classroom has been gone for a grace period
(classrooms reconnect), and then the classroom-behaviour analysis runs on the recording in its own
process (never on the SFU's event loop).

Policy around it (docs/recording.md, "When a lesson is recorded"): the free-disk guard
(recorder/diskguard.py) keeps recorders from starting, and stops running ones cleanly, while the
recordings volume is low on space, and resumes them when there is room again; retention
(recorder/retention.py) deletes recordings older than ``recording.retention_days`` in a periodic
sweep. Both are logged, counted (``classroom_recording_*``) and told to the lesson's classrooms
(a ``recording`` message)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from recorder.catalogue import recordings_root
from recorder.core import safe_name
from recorder.diskguard import DiskGuard, GuardReading
from recorder.launcher import CredentialSource, RecorderCredentials, RecorderStats
from recorder.retention import SweepResult, sweep
from recorder.service import RecordingService
from signaling.protocol import server_message
from signaling.recorder_access import RecorderAccess
from signaling.room import Room
from signaling.tokens import TokenSigner

log = logging.getLogger(__name__)

# A recorder token only has to last from its launch to its join (a restart gets a new one).
RECORDER_TOKEN_TTL_S = 120.0


@dataclass
class PolicyStats:
    """Plain counters of the guard and the retention sweep (``classroom_recording_*``)."""

    guard_stops: int = 0  # recorders stopped because the volume was low on space
    guard_refusals: int = 0  # recordings not started because the volume was low on space
    guard_resumes: int = 0  # recordings started again once there was room
    retention_sweeps: int = 0
    retention_deleted: int = 0
    retention_freed_bytes: int = 0
    retention_failures: int = 0


@dataclass
class RetentionPolicy:
    days: float = 180.0  # 0: keep forever
    sweep_s: float = 3600.0
    clock: Callable[[], float] = time.time


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
        guard: DiskGuard | None = None,
        disk_check_s: float = 5.0,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self.service = service
        self.access = access or RecorderAccess()
        self.signer = signer
        self.data_dir = data_dir
        self.wanted = wanted
        self.grace_s = grace_s
        self.analytics_interval_s = analytics_interval_s
        self.guard = guard
        self.disk_check_s = disk_check_s
        self.retention = retention or RetentionPolicy(days=0)
        self.stats = PolicyStats()
        self.recording: set[str] = set()
        # lessons that want recording but the guard stopped (or did not start) for lack of space
        self.held: set[str] = set()
        self._rooms: dict[str, Room] = {}  # lessons with a classroom present (to tell, to resume)
        self._ending: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        # what analyses a finished recording (a separate process, never this event loop)
        self.analyze_command = [sys.executable, "-m", "classroom.cli", "analyze"]

    def presence_changed(self, room: Room) -> None:
        lesson = room.lesson_id
        present = any(p.visible for p in room.participants.values())
        if present:
            self._rooms[lesson] = room
            pending = self._ending.pop(lesson, None)
            if pending is not None:
                pending.cancel()
            if lesson not in self.recording and lesson not in self.held and self.wanted(lesson):
                reading = self.guard.check() if self.guard is not None else None
                if reading is not None and reading.low:
                    self.held.add(lesson)
                    self.stats.guard_refusals += 1
                    log.error("not recording lesson %s: the recordings volume %s is low on space (%s); "
                              "it starts when there is room again", lesson, self._volume(), reading.describe())
                else:
                    self._start(lesson, room)
            self._tell(lesson)
        elif (lesson in self.recording or lesson in self.held) and lesson not in self._ending:
            loop = asyncio.get_running_loop()
            self._ending[lesson] = loop.call_later(self.grace_s, self._end_soon, lesson)

    def _start(self, lesson: str, room: Room) -> None:
        self.service.lesson_started(lesson, self._credentials(lesson, room.title))
        self.recording.add(lesson)
        log.info("recording lesson %s", lesson)

    def _volume(self) -> str:
        return str(self.guard.path if self.guard is not None else recordings_root(self.data_dir))

    def _tell(self, lesson: str) -> None:
        """Tell the lesson's classrooms why it is not being recorded: the ``recording`` message
        (``active`` false, sent by the signaling when the recorder leaves) with ``reason``
        ``disk_low`` and a message for the lead page; a recorder that joins again sends
        ``active`` true (signaling/session.py)."""
        room = self._rooms.get(lesson)
        if room is None or lesson not in self.held:
            return
        reading = self.guard.last if self.guard is not None else None
        text = "录制已暂停：录像磁盘空间不足 Recording paused: the recordings disk is low on space"
        if reading is not None:
            text += f" ({reading.describe()})"
        msg = server_message("recording", active=False, reason="disk_low", message=text)
        self._spawn(room.broadcast(msg, include_hidden=False))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ free-disk guard
    def start(self) -> None:
        """Start the guard's and the retention sweep's periodic tasks (on the server's loop)."""
        loop = asyncio.get_running_loop()
        if self.guard is not None and self.disk_check_s > 0:
            self._loops.append(loop.create_task(self._guard_loop()))
        if self.retention.days > 0 and self.retention.sweep_s > 0:
            self._loops.append(loop.create_task(self._retention_loop()))

    async def _guard_loop(self) -> None:
        while True:
            await asyncio.sleep(self.disk_check_s)
            try:
                await self.check_disk()
            except Exception:
                log.exception("free-disk guard check failed")

    async def check_disk(self) -> GuardReading | None:
        """One look at the recordings volume: stop every recorder when it is low, resume the
        lessons the guard held once there is room."""
        if self.guard is None or not (self.recording or self.held):
            return None
        was_tripped = self.guard.tripped
        reading = self.guard.check()
        if reading.low:
            if not was_tripped:
                log.error("free-disk guard: the recordings volume %s is low on space (%s): stopping %d "
                          "recording(s) cleanly; they resume when there is room again", self._volume(),
                          reading.describe(), len(self.recording))
            for lesson in sorted(self.recording):
                self.recording.discard(lesson)
                self.held.add(lesson)
                self.stats.guard_stops += 1
                log.error("free-disk guard: recording of lesson %s stopped (%s)", lesson, reading.describe())
                await self.service.lesson_ended(lesson)  # SIGTERM: files closed, manifest finalized
                self._tell(lesson)
        elif self.held:
            log.warning("free-disk guard: room on %s again (%s): resuming %d recording(s)", self._volume(),
                        reading.describe(), len(self.held))
            for lesson in sorted(self.held):
                room = self._rooms.get(lesson)
                self.held.discard(lesson)
                if room is None:
                    continue
                self.stats.guard_resumes += 1
                self._start(lesson, room)
                self._tell(lesson)
        return reading

    # ------------------------------------------------------------------ retention
    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.sweep_now()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(self.retention.sweep_s)

    async def sweep_now(self) -> SweepResult:
        """Delete recordings older than ``retention.days`` (in a worker thread), never one being
        recorded now."""
        active = {safe_name(lesson) for lesson in self.recording | self.held | set(self._ending)}
        root = recordings_root(self.data_dir)
        result = await asyncio.get_running_loop().run_in_executor(
            None, sweep, root, self.retention.clock(), self.retention.days, active
        )
        self.stats.retention_sweeps += 1
        self.stats.retention_deleted += len(result.deleted)
        self.stats.retention_freed_bytes += result.freed_bytes
        self.stats.retention_failures += len(result.failed)
        if result.deleted or result.failed:
            log.info("retention sweep: %d recording(s) deleted (%d bytes), %d kept, %d could not be deleted",
                     len(result.deleted), result.freed_bytes, result.kept, len(result.failed))
        return result

    def status(self) -> dict[str, Any]:
        """The policy as the bureau's settings endpoint shows it."""
        reading = self.guard.last if self.guard is not None else None
        guard: dict[str, Any] | None = None
        if self.guard is not None:
            guard = {
                "min_free_bytes": self.guard.min_free_bytes,
                "min_free_percent": self.guard.min_free_percent,
                "tripped": self.guard.tripped,
                "free_bytes": reading.space.free_bytes if reading is not None and reading.space else None,
                "total_bytes": reading.space.total_bytes if reading is not None and reading.space else None,
                "held_lessons": sorted(self.held),
            }
        return {"retention_days": self.retention.days, "disk_guard": guard,
                "recording_now": sorted(self.recording)}

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
        if self._rooms.get(room.lesson_id) is room and room.lesson_id not in self._ending:
            self._rooms.pop(room.lesson_id, None)

    def register_metrics(self, app: web.Application) -> None:
        """Add ``classroom_recorder_*`` to the server's ``/metrics`` (if metrics are wired)."""
        from classroom.metrics import METRICS_REGISTRY

        registry = app.get(METRICS_REGISTRY)
        if registry is not None:
            registry.register(RecorderCollector(self.service.launcher.stats, self.access, self))

    def _end_soon(self, lesson: str) -> None:
        self._ending.pop(lesson, None)
        task = asyncio.get_running_loop().create_task(self.end(lesson))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end(self, lesson: str) -> None:
        """Stop the recorder, then analyse what it wrote."""
        self._rooms.pop(lesson, None)
        if lesson in self.held:  # stopped by the free-disk guard: analyse what it wrote
            self.held.discard(lesson)
        elif lesson not in self.recording:
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
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
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

    def __init__(self, stats: RecorderStats, access: RecorderAccess,
                 coordinator: RecordingCoordinator | None = None) -> None:
        self.stats = stats
        self.access = access
        self.coordinator = coordinator

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
        if self.coordinator is not None:
            yield from self._policy(self.coordinator)

    @staticmethod
    def _policy(c: RecordingCoordinator) -> Iterable[Metric]:
        p = c.stats
        counters = (
            ("classroom_recording_disk_guard_stops", "recordings stopped cleanly by the free-disk guard",
             p.guard_stops),
            ("classroom_recording_disk_guard_refusals", "recordings not started: the recordings volume was low",
             p.guard_refusals),
            ("classroom_recording_disk_guard_resumes", "recordings resumed once the volume had room again",
             p.guard_resumes),
            ("classroom_recording_retention_sweeps", "retention sweeps run", p.retention_sweeps),
            ("classroom_recording_retention_deleted", "recordings deleted by retention", p.retention_deleted),
            ("classroom_recording_retention_deleted_bytes", "bytes freed by retention", p.retention_freed_bytes),
            ("classroom_recording_retention_failures", "recordings retention could not delete",
             p.retention_failures),
        )  # fmt: skip
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        guard = c.guard
        if guard is not None:
            yield GaugeMetricFamily("classroom_recording_disk_guard_active",
                                    "1 while the free-disk guard holds recordings back", value=int(guard.tripped))
            last = guard.last
            if last is not None and last.space is not None:
                yield GaugeMetricFamily("classroom_recording_disk_free_bytes",
                                        "free bytes on the recordings volume (last guard check)",
                                        value=last.space.free_bytes)
            yield GaugeMetricFamily("classroom_recording_disk_guard_threshold_bytes",
                                    "free bytes under which the guard stops recording",
                                    value=last.threshold_bytes if last is not None else guard.min_free_bytes)
