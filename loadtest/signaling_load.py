"""Signaling load test: a ``classroom serve`` subprocess and locust (headless) against it.

    python -m loadtest.signaling_load --users 500 --spawn-seconds 60 --json PATH

Starts the server (127.0.0.1, free port, temporary data dir, ``--no-demo``,
``CLASSROOM_TOKEN_SECRET`` set), pinned to core 0, runs ``locust -f loadtest/locustfile.py
--headless`` pinned to core 1 with ``--users`` classroom users spawned evenly over
``--spawn-seconds`` plus a few bureau users, and reports join latency (token sent → ``joined``)
p50/p95/p99 and failures. Exit status 0 only if there were no failures.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadtest.serverproc import (
    REPO_ROOT,
    ServerProcess,
    cpu_seconds,
    local_redis,
    machine_cpu,
    machine_load,
    start_server,
    wrap_command,
)

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def _probe(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _healthz(base_url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(base_url + "/healthz", timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (OSError, ValueError):
        return {}


def _loop_lag_max(base_url: str) -> float:
    """The server's own event-loop lag (largest since its previous scrape), from /metrics."""
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=5) as resp:
            text = resp.read().decode("utf-8", "replace")
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("classroom_event_loop_lag_max_seconds "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return 0.0
    return 0.0


class PeakWatcher(threading.Thread):
    """Polls /healthz every few seconds and keeps the largest number of connected classrooms."""

    def __init__(self, base_url: str, period: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.period = period
        self.peak = 0
        self.peak_lessons = 0
        self.loop_lag_max_s = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.period):
            h = _healthz(self.base_url)
            rooms = h.get("classrooms") or {}
            n = sum(int(v) for v in rooms.values()) if isinstance(rooms, dict) else 0
            cluster = h.get("cluster")
            if isinstance(cluster, dict):  # a relay node: the cluster's figures, not its own (none)
                n = int(cluster.get("classrooms") or 0)
            if n > self.peak:
                self.peak = n
                self.peak_lessons = int((cluster or h).get("lessons") or 0)
            self.loop_lag_max_s = max(self.loop_lag_max_s, _loop_lag_max(self.base_url))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def _read_stats_csv(prefix: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    path = Path(prefix + "_stats.csv")
    if not path.exists():
        return out
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = f"{row['Type']} {row['Name']}".strip()
            out[key] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"] or "nan"),
                "p95_ms": float(row["95%"] or "nan"),
                "p99_ms": float(row["99%"] or "nan"),
                "max_ms": float(row["Max Response Time"] or "nan"),
            }
    return out


def _read_failures_csv(prefix: str) -> list[dict[str, Any]]:
    path = Path(prefix + "_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [
            {"name": r["Name"], "error": r["Error"], "occurrences": int(r["Occurrences"])}
            for r in csv.DictReader(f)
        ]


def run_load(
    users: int,
    spawn_seconds: float,
    hold_seconds: float = 60.0,
    run_seconds: float | None = None,
    lesson_size: int = 10,
    bureau_users: int = 2,
    ping_seconds: float = 5.0,
    pin: bool = True,
    server: ServerProcess | None = None,
    quiet: bool = False,
    nice: int = 0,
) -> dict[str, Any]:
    own_server = server is None
    if server is None:
        server = start_server(cpu=0 if pin else None, nice=nice)
    run_s = run_seconds if run_seconds is not None else spawn_seconds + hold_seconds + 10.0
    workdir = Path(tempfile.mkdtemp(prefix="classroom-locust-"))
    try:
        admin_key = server.admin_key(wait_s=1.0)
        schedule_wired = _probe(server.base_url + "/api/openapi.json") == 200
        mode = "api" if (schedule_wired and admin_key) else "none"
        env = dict(os.environ)
        env.update(
            LOADTEST_TOKEN_SECRET=server.secret,
            LOADTEST_ADMIN_KEY=admin_key or "",
            LOADTEST_SCHEDULE=mode,
            LOADTEST_LESSON_SIZE=str(lesson_size),
            LOADTEST_HOLD_S=str(hold_seconds),
            LOADTEST_PING_S=str(ping_seconds),
            LOADTEST_BUREAU_USERS=str(bureau_users),
            LOADTEST_SAMPLES=str(workdir / "samples.json"),
            LOADTEST_RUN_ID=str(int(time.time())),
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
        )
        total = users + bureau_users
        rate = total / max(spawn_seconds, 0.1)
        prefix = str(workdir / "locust")
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(total), "-r", f"{rate:.3f}", "-t", f"{int(math.ceil(run_s))}s",
            "--host", server.base_url, "--csv", prefix, "--only-summary",
            "--stop-timeout", "5", "--loglevel", "WARNING", "--exit-code-on-error", "1",
        ]
        cmd = wrap_command(cmd, 1 if pin else None, nice)
        watcher = PeakWatcher(server.base_url)
        watcher.start()
        cpu0 = cpu_seconds(server.pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        m0 = machine_cpu()
        t0 = time.monotonic()
        proc = subprocess.run(
            cmd, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
            timeout=run_s + 120,
        )
        wall = time.monotonic() - t0
        load = machine_load(m0, machine_cpu(), wall)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        locust_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        cpu1 = cpu_seconds(server.pid) if server.alive() else math.nan
        watcher.stop()
        samples: dict[str, Any] = {}
        spath = workdir / "samples.json"
        if spath.exists():
            samples = json.loads(spath.read_text(encoding="utf-8"))
        join_ms: list[float] = samples.get("join_ms", [])
        stats = _read_stats_csv(prefix)
        failures = _read_failures_csv(prefix)
        failure_total = sum(f["occurrences"] for f in failures)
        agg = stats.get("Aggregated", {})
        result: dict[str, Any] = {
            "test": "signaling_load",
            "classroom_users": users,
            "bureau_users": bureau_users,
            "bureau_mode": (
                "schedule API: set-up POSTs (school, classrooms, teacher, lesson), then GET "
                "/api/schedule/today|week, /api/lessons, /api/lessons/{id}[/live|/links], "
                "/api/me, /api/openapi.json" if mode == "api" else
                "schedule not wired into the server: /healthz and / (index page)"
            ),
            "spawn_seconds": spawn_seconds,
            "hold_seconds": hold_seconds,
            "run_seconds": run_s,
            "lesson_size": lesson_size,
            "negotiation": "none (signaling only: join + ping every "
                           f"{ping_seconds:g} s + hold + leave)",
            "peak_concurrent_classrooms": watcher.peak,
            "peak_lessons": watcher.peak_lessons,
            "server_event_loop_lag_max_ms": round(1000 * watcher.loop_lag_max_s, 1),
            "joins": len(join_ms),
            "join_ms": {
                "p50": round(percentile(join_ms, 50), 2),
                "p95": round(percentile(join_ms, 95), 2),
                "p99": round(percentile(join_ms, 99), 2),
                "max": round(max(join_ms), 2) if join_ms else math.nan,
            },
            "failures": failure_total,
            "failure_detail": failures,
            "requests": agg.get("requests", 0),
            "locust_stats": stats,
            "server_cpu_seconds": round(cpu1 - cpu0, 2),
            "server_cpu_percent_of_core": round(100.0 * (cpu1 - cpu0) / wall, 1),
            "locust_cpu_percent_of_core": round(100.0 * locust_cpu / wall, 1),
            "nice": nice,
            **load,
            "server_alive_after": server.alive(),
            "locust_exit_code": proc.returncode,
            "counts": samples.get("counts", {}),
        }
        result["pass"] = bool(
            failure_total == 0 and proc.returncode == 0 and join_ms
            and percentile(join_ms, 99) <= 300.0
        )
        if proc.returncode != 0 and not quiet:
            sys.stderr.write(proc.stderr[-4000:])
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if own_server:
            server.stop()


def _run_through_relay(args: argparse.Namespace, hold: float) -> dict[str, Any]:
    """The same load, joined through a node that holds none of the lessons."""
    import secrets

    servers: list[ServerProcess] = []
    with local_redis("classroom-load-redis-") as (url, env):
        try:
            secret = secrets.token_hex(32)
            cpu = None if args.no_pin else 0
            servers.append(start_server(cpu=cpu, extra_args=["--redis", url, "--node-id", "owner"], env=env,
                                        nice=args.nice, secret=secret))
            servers.append(start_server(cpu=cpu, extra_args=["--redis", url, "--node-id", "relay"],
                                        env={**env, "CLASSROOM_REDIS_TAKES_LESSONS": "false"}, nice=args.nice,
                                        secret=secret))
            result = run_load(args.users, args.spawn_seconds, hold, args.run_seconds, args.lesson_size,
                              args.bureau_users, args.ping_seconds, pin=not args.no_pin, server=servers[1],
                              nice=args.nice)
            result["through"] = "relay node (every lesson held by the other node; signaling relayed over Redis)"
            return result
        finally:
            for server in servers:
                server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.signaling_load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=500, help="classroom WebSocket users")
    ap.add_argument("--spawn-seconds", type=float, default=60.0)
    ap.add_argument("--hold-seconds", type=float, default=None,
                    help="how long each classroom stays before leaving, then it joins again "
                         "(default: spawn + 20 s, so all users are connected at once for a while)")
    ap.add_argument("--run-seconds", type=float, default=None,
                    help="whole run (default: spawn + hold + 10 s)")
    ap.add_argument("--lesson-size", type=int, default=10,
                    help="classrooms per lesson (1 lead + remotes)")
    ap.add_argument("--bureau-users", type=int, default=2)
    ap.add_argument("--ping-seconds", type=float, default=5.0)
    ap.add_argument("--no-pin", action="store_true", help="do not pin server/locust to cores 0/1")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the server and locust at this niceness (e.g. -10 on a shared "
                         "machine, as root)")
    ap.add_argument("--relay", action="store_true",
                    help="two nodes and a local redis-server: every lesson is held by node 'owner', locust "
                         "joins through node 'relay' (CLASSROOM_REDIS_TAKES_LESSONS=false), so every message "
                         "is relayed over Redis (docs/operations.md, Cluster); compare with a run without it")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args(argv)
    hold = args.hold_seconds if args.hold_seconds is not None else args.spawn_seconds + 20.0
    if args.relay:
        result = _run_through_relay(args, hold)
    else:
        result = run_load(
            args.users, args.spawn_seconds, hold, args.run_seconds, args.lesson_size,
            args.bureau_users, args.ping_seconds, pin=not args.no_pin, nice=args.nice,
        )
    j = result["join_ms"]
    print(
        f"signaling load: {args.users} classroom users over {args.spawn_seconds:g} s "
        f"(peak {result['peak_concurrent_classrooms']} connected in "
        f"{result['peak_lessons']} lessons), {result['joins']} joins"
    )
    print(f"join latency (token -> joined) ms: p50 {j['p50']}  p95 {j['p95']}  p99 {j['p99']}  "
          f"max {j['max']}")
    print(f"failures: {result['failures']}  requests: {result['requests']}  "
          f"server CPU {result['server_cpu_percent_of_core']}% of a core, "
          f"locust {result['locust_cpu_percent_of_core']}%; server loop lag max "
          f"{result['server_event_loop_lag_max_ms']} ms; machine busy "
          f"{result['machine_busy_percent_of_core']}% of 200%")
    for f in result["failure_detail"][:10]:
        print(f"  failure: {f['name']}: {f['error']} x{f['occurrences']}")
    print("PASS" if result["pass"] else "FAIL", "(acceptance: 0 failures, join p99 <= 300 ms)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
