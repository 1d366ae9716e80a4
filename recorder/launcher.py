"""Start, supervise and stop recorder worker processes from the server (``classroom serve``).

Each recorded lesson gets its own ``classroom record --url .. --token-fd N --out DIR`` process,
so a crash or a slow disk never touches the SFU, and the SFU's CPU is not the recorder's.

Credentials: the join token never appears on the child's command line or in its environment.
Before every launch the launcher asks its credential source for a fresh token (a per-launch
nonce the server remembers, see ``signaling/recorder_access.py``), writes it into a pipe and
lets the child inherit only the pipe's read end (``--token-fd``). The child's environment is
the server's minus every variable that looks like a secret.

Supervision: one asyncio task per lesson waits for its child (so it is reaped: no zombie).
When the child ends without being asked to, the death is logged and counted, the documented
repair (``classroom record --repair DIR``, its own process) runs on what the dead worker left,
and after a backoff (``backoff_s`` doubling up to ``backoff_max_s``) a new recorder is started
in the same recording directory; it resumes the recording and writes a ``recorder_gap`` event
(docs/recording-format.md). After ``max_restarts`` deaths in a row (a run that lasted
``stable_s`` resets the count) it gives up, logs an error and counts it. A recorder that stops
because its recording directory is full (exit status ``EXIT_DISK_FULL``) is not restarted: that
is logged as an error and counted (``classroom_recorder_disk_full_total``).

Wiring (``classroom/recording.py`` does this for the server)::

    launcher = RecorderLauncher(ws_url=f"ws://{host}:{port}/ws", data_dir=config.data_path)
    launcher.start(lesson_id, credentials)   # credentials() -> RecorderCredentials
    ...
    await launcher.stop_all()   # on shutdown: SIGTERM, the recorders finalize their files
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recorder.core import safe_name
from recorder.worker import EXIT_DISK_FULL

log = logging.getLogger(__name__)

SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")


@dataclass(frozen=True)
class RecorderCredentials:
    """What one launch needs: its token, and a hook told the child's pid once it runs."""

    token: str
    bind: Callable[[int], None] = field(default=lambda pid: None)


CredentialSource = Callable[[], RecorderCredentials]


@dataclass
class RecorderStats:
    """Plain counters (exported as ``classroom_recorder_*`` by classroom/recording.py)."""

    started: int = 0
    failures: int = 0  # recorder processes that ended without being asked to
    restarts: int = 0
    repairs: int = 0
    repair_failures: int = 0
    gave_up: int = 0  # lessons whose recorder stayed dead after max_restarts
    disk_full: int = 0  # recorders that stopped because their recording directory was full
    running: int = 0


@dataclass
class _Supervised:
    lesson_id: str
    directory: Path
    credentials: CredentialSource
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    stop_task: asyncio.Task[int | None] | None = None
    stopping: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pids: list[int] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)


# The server's pid, in the recorder's environment: the recorder asks for SIGTERM when that process
# dies (``die_with_parent``, at its start). Done in the child itself, not in a ``preexec_fn``: a
# ``preexec_fn`` makes Python fork (no vfork) and wait, blocking the server's event loop, until
# the child has run it and exec'd — measured 1.9 s of a node's loop on the loaded 2-core machine
# when a lesson moved to it (its other lessons froze, its new classrooms waited).
PARENT_ENV = "CLASSROOM_RECORDER_PARENT_PID"


def die_with_parent(parent: int | None = None) -> None:
    """In the recorder process, first thing: a SIGTERM when the server that started it
    (``parent``, default ``$CLASSROOM_RECORDER_PARENT_PID``) dies, even by ``kill -9`` (Linux
    ``PR_SET_PDEATHSIG``). The recorder then closes its files cleanly, and the node that takes the
    lesson over resumes the recording in the same directory with a gap event, instead of an orphan
    writing beside it. A server already gone by then: SIGTERM at once."""
    if parent is None:
        try:
            parent = int(os.environ.get(PARENT_ENV, ""))
        except ValueError:
            return
    if sys.platform != "linux":
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the prctl: nobody would send the signal
        os.kill(os.getpid(), signal.SIGTERM)


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment without anything that looks like a secret."""
    source = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in source.items() if not any(word in k.upper() for word in SECRET_WORDS)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass
class RecorderLauncher:
    ws_url: str
    data_dir: Path
    segment_seconds: float = 2.0
    log_level: str = "WARNING"
    max_restarts: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    stable_s: float = 60.0
    repair_timeout_s: float = 600.0
    # Keep one recorder process started ahead, imports done, waiting for its job on stdin
    # (``classroom record --standby``): a lesson's recorder then joins within a fraction of a
    # second instead of after a process start-up (2.4 s at load 14 here, 12 s when a node had just
    # died and its lessons moved: the recording's gap). A new one is started after each use.
    standby: bool = False
    # the next standby starts this long after one was used: not while the lesson that took it (a
    # node's failover: pages rejoining, publishing, subscribing) needs the CPU and the loop; a
    # process start-up beside it froze the node's other lesson for 0.9 s at load 6
    standby_delay_s: float = 10.0
    stats: RecorderStats = field(default_factory=RecorderStats)
    supervised: dict[str, _Supervised] = field(default_factory=dict)
    _standby: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _standby_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)
    _prewarm_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def directory(self, lesson_id: str) -> Path:
        return self.data_dir / "recordings" / safe_name(lesson_id)

    def command(self, token_fd: int, out: Path) -> list[str]:
        return [
            sys.executable, "-m", "classroom.cli", "record",
            "--url", self.ws_url,
            "--token-fd", str(token_fd),
            "--out", str(out),
            "--data-dir", str(self.data_dir),
            "--segment-seconds", str(self.segment_seconds),
            "--log-level", self.log_level,
        ]  # fmt: skip

    def standby_command(self) -> list[str]:
        return [
            sys.executable, "-m", "classroom.cli", "record", "--standby",
            "--url", self.ws_url,
            "--data-dir", str(self.data_dir),
            "--segment-seconds", str(self.segment_seconds),
            "--log-level", self.log_level,
        ]  # fmt: skip

    # ------------------------------------------------------------------------------ standby
    def prewarm(self) -> None:
        """Start the standby recorder in the background (no-op if off, running or starting)."""
        if not self.standby or self._closed:
            return
        if self._standby_task is not None and not self._standby_task.done():
            return
        if self._standby is not None and self._standby.returncode is None:
            return
        self._standby_task = asyncio.get_running_loop().create_task(self._start_standby())

    async def _start_standby(self) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *self.standby_command(),
                stdin=asyncio.subprocess.PIPE,
                env={**child_environment(), PARENT_ENV: str(os.getpid())},
            )
        except (OSError, ValueError) as exc:
            log.warning("standby recorder cannot start (recorders start cold): %s", exc)
            return
        if self._closed:
            await self._end_standby(process)
            return
        self._standby = process
        log.info("standby recorder ready to start (pid %d)", process.pid)

    async def _take_standby(self, credentials: RecorderCredentials, out: Path) -> asyncio.subprocess.Process | None:
        """The standby recorder, given its job (a new standby is started behind it); None if
        there is none alive."""
        process, self._standby = self._standby, None
        if process is None or process.returncode is not None or process.stdin is None:
            self._prewarm_later()
            return None
        credentials.bind(process.pid)  # before it has its token: its join is admitted
        line = json.dumps({"token": credentials.token, "out": str(out)}) + "\n"
        try:
            process.stdin.write(line.encode("utf-8"))
            await process.stdin.drain()
            process.stdin.close()
        except (ConnectionError, OSError):
            await self._end_standby(process)
            self._prewarm_later()
            return None
        self._prewarm_later()
        return process

    def _prewarm_later(self) -> None:
        if self._prewarm_timer is None or self._prewarm_timer.cancelled():
            self._prewarm_timer = asyncio.get_running_loop().call_later(self.standby_delay_s, self._prewarm_due)

    def _prewarm_due(self) -> None:
        self._prewarm_timer = None
        self.prewarm()

    async def _end_standby(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()  # end of file: it exits by itself
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    # ------------------------------------------------------------------------------ control
    def start(self, lesson_id: str, credentials: CredentialSource | str) -> None:
        """Start and supervise ``lesson_id``'s recorder (no-op while it is supervised already)."""
        current = self.supervised.get(lesson_id)
        if current is not None and not current.stopping and current.task is not None and not current.task.done():
            return
        source: CredentialSource
        if isinstance(credentials, str):
            fixed = credentials

            def source() -> RecorderCredentials:
                return RecorderCredentials(fixed)
        else:
            source = credentials
        entry = _Supervised(lesson_id, self.directory(lesson_id), source)
        self.supervised[lesson_id] = entry
        entry.task = asyncio.get_running_loop().create_task(self._supervise(entry))

    def running(self, lesson_id: str) -> bool:
        entry = self.supervised.get(lesson_id)
        return entry is not None and entry.process is not None and entry.process.returncode is None

    def pid(self, lesson_id: str) -> int | None:
        entry = self.supervised.get(lesson_id)
        if entry is None or entry.process is None or entry.process.returncode is not None:
            return None
        return entry.process.pid

    @property
    def processes(self) -> dict[str, asyncio.subprocess.Process]:
        """The running recorder processes by lesson."""
        return {
            lesson: entry.process
            for lesson, entry in self.supervised.items()
            if entry.process is not None and entry.process.returncode is None
        }

    async def stop(self, lesson_id: str, timeout: float = 15.0) -> int | None:
        """SIGTERM (clean stop: trailers, final manifest), SIGKILL after ``timeout``; returns the
        exit code of the recorder that was running (None if none was). The stop goes on even if
        the caller is cancelled, and :meth:`stop_all` waits for it."""
        entry = self.supervised.get(lesson_id)
        if entry is None:
            return None
        if entry.stop_task is None:
            entry.stop_task = asyncio.get_running_loop().create_task(self._stop(entry, timeout))
        return await asyncio.shield(entry.stop_task)

    async def _stop(self, entry: _Supervised, timeout: float) -> int | None:
        entry.stopping = True
        entry.wake.set()
        code: int | None = None
        try:
            process = entry.process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    code = await asyncio.wait_for(process.wait(), timeout)
                except TimeoutError:
                    log.warning("recorder for lesson %s did not stop; killing it", entry.lesson_id)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    code = await process.wait()
            if entry.task is not None:
                try:  # a repair under way finishes: it is what makes the files whole
                    await asyncio.wait_for(asyncio.shield(entry.task), self.repair_timeout_s)
                except TimeoutError:
                    entry.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await entry.task
        finally:
            if self.supervised.get(entry.lesson_id) is entry:
                del self.supervised[entry.lesson_id]
        return code

    async def stop_all(self) -> None:
        self._closed = True
        if self._prewarm_timer is not None:
            self._prewarm_timer.cancel()
        if self._standby_task is not None and not self._standby_task.done():
            with contextlib.suppress(Exception):
                await self._standby_task
        standby, self._standby = self._standby, None
        if standby is not None:
            await self._end_standby(standby)
        await asyncio.gather(*(self.stop(lesson) for lesson in list(self.supervised)))

    # --------------------------------------------------------------------------- supervision
    async def _spawn(self, entry: _Supervised) -> asyncio.subprocess.Process:
        credentials = entry.credentials()
        warm = await self._take_standby(credentials, entry.directory) if self.standby else None
        if warm is not None:
            entry.pids.append(warm.pid)
            return warm
        read_fd, write_fd = os.pipe()
        try:
            data = credentials.token.encode("utf-8") + b"\n"
            while data:  # a token is far below the pipe's buffer: this never blocks
                data = data[os.write(write_fd, data):]
        finally:
            os.close(write_fd)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(read_fd, entry.directory),
                stdin=asyncio.subprocess.DEVNULL,
                env={**child_environment(), PARENT_ENV: str(os.getpid())},
                pass_fds=(read_fd,),
            )
        finally:
            os.close(read_fd)
        credentials.bind(process.pid)
        entry.pids.append(process.pid)
        return process

    async def _supervise(self, entry: _Supervised) -> None:
        lesson = entry.lesson_id
        failures_in_a_row = 0
        while not entry.stopping:
            try:
                process = await self._spawn(entry)
            except (OSError, ValueError) as exc:
                log.error("recorder for lesson %s cannot start: %s", lesson, exc)
                code, started = 127, time.monotonic()
            else:
                entry.process = process
                self.stats.started += 1
                self.stats.running += 1
                log.info("recorder for lesson %s started (pid %d)", lesson, process.pid)
                started = time.monotonic()
                try:
                    code = await process.wait()  # reaps the child
                finally:
                    self.stats.running -= 1
                entry.exit_codes.append(code)
            if entry.stopping:
                return
            if code == EXIT_DISK_FULL:  # a restart would only fill the disk again
                self.stats.disk_full += 1
                log.error("recorder for lesson %s stopped: its recording directory %s is full; not "
                          "restarting it (the lesson goes on unrecorded). What was written is kept: free "
                          "space, then run `classroom record --repair %s`", lesson, entry.directory, entry.directory)
                return
            self.stats.failures += 1
            pid = entry.pids[-1] if entry.pids else 0
            log.warning("recorder for lesson %s (pid %d) died after %.0f s: %s",
                        lesson, pid, time.monotonic() - started, describe_exit(code))
            await self._repair(entry)
            if time.monotonic() - started >= self.stable_s:
                failures_in_a_row = 0
            failures_in_a_row += 1
            if failures_in_a_row > self.max_restarts:
                self.stats.gave_up += 1
                log.error("recorder for lesson %s died %d times in a row; not restarting it "
                          "(the lesson goes on unrecorded)", lesson, failures_in_a_row)
                return
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** (failures_in_a_row - 1))
            log.warning("restarting the recorder for lesson %s in %.1f s (restart %d of at most %d in a row)",
                        lesson, delay, failures_in_a_row, self.max_restarts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.wake.wait(), delay)
            if entry.stopping:
                return
            self.stats.restarts += 1

    async def _repair(self, entry: _Supervised) -> None:
        """``classroom record --repair DIR`` in its own process (never on the SFU's loop)."""
        if not (entry.directory / "manifest.json").exists():
            return
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "classroom.cli", "record", "--repair", str(entry.directory),
            "--log-level", "WARNING",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=child_environment(),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.repair_timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            self.stats.repair_failures += 1
            log.error("repair of %s did not finish; run `classroom record --repair %s`",
                      entry.directory, entry.directory)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if proc.returncode:
            self.stats.repair_failures += 1
            log.error("repair of %s failed: %s", entry.directory, err.decode(errors="replace")[-500:])
        else:
            self.stats.repairs += 1
            log.info("repaired %s after the recorder's death: %s", entry.directory,
                     out.decode(errors="replace").strip())
