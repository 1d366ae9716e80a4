"""Start and stop a ``classroom serve`` subprocess for the load tests.

The server binds 127.0.0.1 on a free port (``--port 0``; the port is read back from its banner) and
its media port on another one (``CLASSROOM_MEDIA_UDP_PORT=0`` unless the caller's environment sets it),
uses a temporary data directory, has no demo lesson, and gets ``CLASSROOM_TOKEN_SECRET`` so the
load test can mint join tokens itself with :class:`signaling.tokens.TokenSigner`. If the schedule
API is wired into the server, the bootstrap admin API key it prints at first start is picked up
from the banner (``admin_key``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from signaling.tokens import TokenSigner

REPO_ROOT = Path(__file__).resolve().parent.parent
_SERVING = re.compile(r"serving on (http://[0-9.]+:(\d+))")
_ADMIN_KEY = re.compile(r"\b(cka_[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+)")


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    base_url: str
    port: int
    data_dir: Path
    secret: str
    lines: list[str] = field(default_factory=list)
    own_data_dir: bool = True
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def signer(self) -> TokenSigner:
        return TokenSigner(self.secret.encode("utf-8"))

    def admin_key(self, wait_s: float = 1.0) -> str | None:
        """The bootstrap admin key printed by the schedule at first start, if any."""
        deadline = time.monotonic() + wait_s
        while True:
            for line in list(self.lines):
                m = _ADMIN_KEY.search(line)
                if m:
                    return m.group(1)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._reader is not None:
            self._reader.join(2)
        if self.own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return int(self.proc.returncode or 0)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wrap_command(cmd: list[str], cpu: int | None = None, nice: int = 0) -> list[str]:
    """``cmd`` pinned to core ``cpu`` (taskset) and at niceness ``nice`` (nice), if asked."""
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    if nice and shutil.which("nice"):
        cmd = ["nice", "-n", str(nice), *cmd]
    return cmd


def _drain(proc: subprocess.Popen[str], lines: list[str], echo: bool) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if len(lines) < 10_000:
            lines.append(line.rstrip("\n"))
        if echo:
            sys.stderr.write("[server] " + line)


def start_server(
    cpu: int | None = None,
    extra_args: Sequence[str] = (),
    log_level: str = "WARNING",
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    echo: bool = False,
    nice: int = 0,
    secret: str | None = None,
) -> ServerProcess:
    """Start ``classroom serve`` (pinned to ``cpu`` with taskset if given, at niceness ``nice``
    if not 0) and wait until it listens. Raises ``RuntimeError`` with the server's output if it
    does not come up."""
    data_dir = Path(tempfile.mkdtemp(prefix="classroom-load-"))
    secret = secret or secrets.token_hex(32)  # nodes of one cluster share it
    child_env = dict(os.environ if env is None else env)
    child_env["CLASSROOM_TOKEN_SECRET"] = secret
    child_env["PYTHONUNBUFFERED"] = "1"
    # the node's one media port (media.udp_port) on a port the kernel picks: several servers may run
    # side by side (a cluster, parallel test runs); a caller's own CLASSROOM_MEDIA_UDP_PORT wins
    child_env.setdefault("CLASSROOM_MEDIA_UDP_PORT", "0")
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    cmd = [
        sys.executable, "-m", "classroom.cli", "serve",
        "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir), "--no-demo",
        "--log-level", log_level, *extra_args,
    ]
    cmd = wrap_command(cmd, cpu, nice)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env,
        cwd=str(REPO_ROOT),
    )
    lines: list[str] = []
    reader = threading.Thread(target=_drain, args=(proc, lines, echo), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            m = _SERVING.search(line)
            if m:
                return ServerProcess(
                    proc=proc, base_url=m.group(1), port=int(m.group(2)), data_dir=data_dir,
                    secret=secret, lines=lines, _reader=reader,
                )
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    reader.join(2)
    shutil.rmtree(data_dir, ignore_errors=True)
    raise RuntimeError("classroom serve did not start:\n" + "\n".join(lines[-40:]))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_cpu() -> dict[str, float]:
    """Cumulative CPU seconds of the whole machine (all cores) from /proc/stat: busy
    (user+nice+system+irq+softirq), steal (taken by the hypervisor) and total."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = parts
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "busy": (user + nice + system + irq + softirq) / ticks,
        "steal": steal / ticks,
        "total": sum(parts) / ticks,
    }


def machine_load(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """Busy and steal over a window, in % of one core (200 % = both cores of this machine)."""
    return {
        "machine_busy_percent_of_core": round(100 * (after["busy"] - before["busy"]) / wall, 1),
        "machine_steal_percent_of_core": round(100 * (after["steal"] - before["steal"]) / wall, 1),
    }


@contextmanager
def local_redis(prefix: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A redis-server of our own for a cluster run (``classroom.cluster.LocalRedis``: its password
    in a 0600 file, never on a command line), stopped and removed afterwards. Yields its URL and
    the environment the nodes need (``CLASSROOM_REDIS_PASSWORD``)."""
    from classroom.cluster import LocalRedis

    directory = Path(tempfile.mkdtemp(prefix=prefix))
    redis = LocalRedis(directory)
    proc = redis.supervised()
    proc.start()
    try:
        redis.wait_ready()
        yield redis.url, {**os.environ, "CLASSROOM_REDIS_PASSWORD": redis.password}
    finally:
        proc.terminate()
        proc.wait(5.0)
        shutil.rmtree(directory, ignore_errors=True)
