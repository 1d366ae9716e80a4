"""Capacity sweep: more and more lessons until forwarding latency or loss gives.

    python -m loadtest.capacity --json PATH

Each step starts a fresh ``classroom serve`` pinned to core 0 and one bot process pinned to
core 1 holding ``L`` lessons, each with one publisher bot (``lead``, the cached 720p VP8 +
Opus stream, ``loadtest.media``) and ``K`` no-decode subscriber bots (``remote`` classrooms,
``loadtest.bots.SubscriberBot``: real ICE/DTLS/SRTP, counted at the datagram level). After all
subscribers receive and a warm-up, a ``--seconds`` window is measured: forwarding latency p99
(publisher send → subscriber receive, sampled packets matched by payload CRC), loss (1 −
received ÷ (sent × subscribers), per lesson), forwarded packets/s, the server's CPU
(``/proc/PID/stat``) and the bots' own CPU. ``L`` grows along ``--lessons`` (and ``K`` along
``--classrooms`` at each ``L``) until p99 passes ``--latency-ms`` (20) or loss passes
``--loss`` (0.5 %); the largest load held is reported. If the bots' core is saturated first,
the step says so (``bots_saturated``): then the limit found is the bots', not the server's.

``--nodes N`` (N > 1): each step starts a local redis-server and N ``classroom serve --redis``
nodes (all pinned to core 0, as the single node is, so the CPU per forwarded packet compares at
the same per-node load); lesson ``i``'s bots connect to node ``i mod N`` and each lesson is placed
on the least-loaded node (docs/operations.md, Cluster). The server figures are the nodes' sum,
with each node's share in ``node_cpu_percent_of_core``.

``--nodes N --independent``: the same N processes on core 0 and the same lesson split, but
standalone nodes without Redis (no registry, heartbeats, placement or relays). Beside a
``--nodes N`` run it separates what the cluster code costs from what N processes sharing one core
cost on their own (cache and scheduler), which the single-node baseline does not include.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import time
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

BOTS_SATURATED_PERCENT = 90.0


async def _gather_limited(coros: list[Any], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def _loop_lag_max(base_url: str) -> float:
    """The server's largest event-loop lag since the previous scrape, from /metrics."""
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.get(base_url + "/metrics") as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return math.nan
    for line in text.splitlines():
        if line.startswith("classroom_event_loop_lag_max_seconds "):
            return float(line.split()[1])
    return math.nan


async def _bots(args: argparse.Namespace) -> dict[str, Any]:
    from loadtest.bots import PublisherBot, SendLog, SubscriberBot
    from loadtest.media import load_stream
    from sfu import glue
    from signaling.tokens import TokenSigner

    glue.configure_ice(["127.0.0.1"])
    signer = TokenSigner(os.environ["CLASSROOM_TOKEN_SECRET"].encode())
    stream = load_stream()
    groups: list[tuple[Any, list[Any]]] = []
    urls = str(args.url).split(",")  # one per node (--nodes)
    pids = [int(p) for p in str(args.sfu_pid).split(",")]
    t0 = time.monotonic()
    try:
        for lesson in range(args.lessons):
            lid = f"cap-{lesson}"
            url = urls[lesson % len(urls)]
            log = SendLog()  # one per publisher: every publisher sends the same payloads
            pub = PublisherBot(url, signer.issue(lid, f"{lid}-lead", "lead"), stream,
                               send_log=log)
            await pub.start()
            subs = [
                SubscriberBot(url, signer.issue(lid, f"{lid}-r{i}", "remote"), send_log=log)
                for i in range(args.classrooms)
            ]
            groups.append((pub, subs))
        all_subs = [s for _, g in groups for s in g]
        started = await _gather_limited([s.start() for s in all_subs], 8)
        start_errors = [repr(r) for r in started if isinstance(r, BaseException)]
        waits = await _gather_limited(
            [s.wait_receiving(timeout=args.connect_timeout) for s in all_subs], 1000
        )
        wait_errors = [repr(r) for r in waits if isinstance(r, BaseException)]
        setup_s = time.monotonic() - t0
        await asyncio.sleep(args.warmup)
        live = [(p, [s for s in g if s.received_packets > 0]) for p, g in groups]
        for u in urls:
            await _loop_lag_max(u)  # starts the server's max-lag gauge over
        before = [(p.stats.copy(), [s.stats.copy() for s in g]) for p, g in live]
        node0 = [cpu_seconds(pid) for pid in pids]
        cpu0 = sum(node0)
        m0 = machine_cpu()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.monotonic()
        await asyncio.sleep(args.seconds)
        node1 = [cpu_seconds(pid) for pid in pids]
        cpu1 = sum(node1)
        m1 = machine_cpu()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - w0
        after = [(p.stats.copy(), [s.stats.copy() for s in g]) for p, g in live]
        lags = [await _loop_lag_max(u) for u in urls]
        lag_max_s = max((x for x in lags if not math.isnan(x)), default=math.nan)
    except BaseException:
        await _gather_limited([s.stop() for _, g in groups for s in g], 50)
        await _gather_limited([p.stop() for p, _ in groups], 50)
        raise
    sent = received = expected = 0
    latencies: list[float] = []
    for (pb, sb), (pa, sa) in zip(before, after, strict=True):
        n = sum(pa.sent.values()) - sum(pb.sent.values())
        sent += n
        expected += n * len(sa)
        for b, a in zip(sb, sa, strict=True):
            received += sum(a.received.values()) - sum(b.received.values())
            latencies.extend(a.latencies_ms[len(b.latencies_ms):])
    sfu_cpu = cpu1 - cpu0
    bot_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    await _gather_limited([s.stop() for _, g in groups for s in g], 50)
    await _gather_limited([p.stop() for p, _ in groups], 50)
    return {
        "lessons": args.lessons,
        "classrooms_per_lesson": args.classrooms,
        "subscribers": args.lessons * args.classrooms,
        "subscribers_receiving": sum(len(g) for _, g in live),
        "setup_s": round(setup_s, 1),
        "window_s": round(wall, 2),
        "sent_packets_per_s": round(sent / wall, 1),
        "forwarded_packets_per_s": round(received / wall, 1),
        "forward_latency_ms_p50": round(_pct(latencies, 0.50), 2),
        "forward_latency_ms_p99": round(_pct(latencies, 0.99), 2),
        "latency_samples": len(latencies),
        "loss_ratio": round(max(0.0, 1 - received / expected), 5) if expected else None,
        "sfu_cpu_percent_of_core": round(100 * sfu_cpu / wall, 1),
        "nodes": len(pids),
        "node_cpu_percent_of_core": [round(100 * (b - a) / wall, 1) for a, b in zip(node0, node1, strict=True)],
        "cpu_us_per_forwarded_packet": round(sfu_cpu * 1e6 / received, 2) if received else None,
        "bot_cpu_percent_of_core": round(100 * bot_cpu / wall, 1),
        "server_event_loop_lag_max_ms": round(1000 * lag_max_s, 1),
        "start_error_count": len(start_errors),
        "start_errors": start_errors[:3],
        "receive_error_count": len(wait_errors),
        **machine_load(m0, m1, wall),
    }


def _bot_main(args: argparse.Namespace) -> int:
    try:
        import uvloop

        result = uvloop.run(_bots(args))
    except ImportError:
        result = asyncio.run(_bots(args))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run_step(lessons: int, classrooms: int, args: argparse.Namespace) -> dict[str, Any]:
    if args.nodes > 1:
        return _cluster_step(lessons, classrooms, args)
    server = start_server(cpu=0, nice=args.nice)
    try:
        return _run_bots(lessons, classrooms, args, [server])
    finally:
        server.stop()


def _cluster_step(lessons: int, classrooms: int, args: argparse.Namespace) -> dict[str, Any]:
    import secrets

    servers: list[ServerProcess] = []
    if args.independent:  # N standalone nodes on core 0, one token secret, no Redis
        try:
            secret = secrets.token_hex(32)
            for _ in range(args.nodes):
                servers.append(start_server(cpu=0, nice=args.nice, secret=secret))
            return _run_bots(lessons, classrooms, args, servers)
        finally:
            for server in servers:
                server.stop()
    with local_redis("classroom-capacity-redis-") as (url, env):
        try:
            secret = secrets.token_hex(32)
            for i in range(args.nodes):
                servers.append(start_server(cpu=0, nice=args.nice, env=env, secret=secret,
                                            extra_args=["--redis", url, "--node-id", f"cap-{i + 1}"]))
            return _run_bots(lessons, classrooms, args, servers)
        finally:
            for server in servers:
                server.stop()


def _run_bots(lessons: int, classrooms: int, args: argparse.Namespace,
              servers: list[ServerProcess]) -> dict[str, Any]:
    server = servers[0]
    cmd = [
        sys.executable, "-m", "loadtest.capacity", "--bots",
        "--lessons-now", str(lessons), "--classrooms-now", str(classrooms),
        "--url", ",".join(s.base_url for s in servers), "--sfu-pid", ",".join(str(s.pid) for s in servers),
        "--seconds", str(args.seconds), "--warmup", str(args.warmup),
        "--connect-timeout", str(args.connect_timeout),
    ]
    cmd = wrap_command(cmd, 1, args.nice)
    env = dict(os.environ, CLASSROOM_TOKEN_SECRET=server.secret)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    budget = args.seconds + args.warmup + args.connect_timeout + 2 * lessons * classrooms + 180
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO_ROOT),
                          timeout=budget)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT "):])
            result["server_alive_after"] = all(s.alive() for s in servers)
            return result
    raise RuntimeError(f"capacity bots failed (exit {proc.returncode}):\n"
                       f"{proc.stderr[-3000:]}")


def _held(step: dict[str, Any], args: argparse.Namespace) -> tuple[bool, str]:
    if "error" in step:
        return False, "error: " + step["error"][:200]
    if step["subscribers_receiving"] < step["subscribers"]:
        return False, f"only {step['subscribers_receiving']}/{step['subscribers']} receiving"
    p99, loss = step["forward_latency_ms_p99"], step["loss_ratio"]
    if p99 is None or math.isnan(p99) or p99 > args.latency_ms:
        return False, f"latency p99 {p99} ms > {args.latency_ms:g} ms"
    if loss is None or loss > args.loss:
        return False, f"loss {loss} > {args.loss:g}"
    return True, "held"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.capacity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lessons", default="1,2,4,6,8,10,12,16,20",
                    help="lesson counts to try, in order")
    ap.add_argument("--classrooms", default="10",
                    help="subscriber classrooms per lesson to try at each lesson count")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured window per step")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--connect-timeout", type=float, default=90.0)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--loss", type=float, default=0.005)
    ap.add_argument("--retries", type=int, default=2,
                    help="repeat a step that fails this many times before stopping")
    ap.add_argument("--nice", type=int, default=0,
                    help="niceness of the server and the bots (e.g. -10 on a shared machine)")
    ap.add_argument("--nodes", type=int, default=1,
                    help="node processes coordinated through a local redis-server (default 1: one node, no Redis)")
    ap.add_argument("--independent", action="store_true",
                    help="with --nodes N: N standalone nodes without Redis on the same core, "
                         "the baseline that shows what the cluster code itself costs")
    ap.add_argument("--json", help="write the result here")
    # internal (bot process)
    ap.add_argument("--bots", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lessons-now", type=int, dest="lessons_now", help=argparse.SUPPRESS)
    ap.add_argument("--classrooms-now", type=int, dest="classrooms_now", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--sfu-pid", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bots:
        args.lessons, args.classrooms = args.lessons_now, args.classrooms_now
        return _bot_main(args)

    lesson_steps = [int(x) for x in args.lessons.split(",") if x.strip()]
    room_steps = [int(x) for x in args.classrooms.split(",") if x.strip()]
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stop_reason = "all steps held"
    for lessons in lesson_steps:
        failed = False
        ok = False
        for classrooms in room_steps:
            for attempt in range(1 + args.retries):
                t0 = time.monotonic()
                try:
                    step = run_step(lessons, classrooms, args)
                except Exception as exc:
                    step = {"lessons": lessons, "classrooms_per_lesson": classrooms,
                            "error": repr(exc)[:2000]}
                ok, why = _held(step, args)
                step["held"], step["verdict"], step["attempt"] = ok, why, attempt
                step["bots_saturated"] = (step.get("bot_cpu_percent_of_core") or 0) >= \
                    BOTS_SATURATED_PERCENT
                step["elapsed_s"] = round(time.monotonic() - t0, 1)
                steps.append(step)
                _report(step, lessons, classrooms, why)
                if ok:
                    break
            if ok:
                best = step
            else:
                failed = True
                stop_reason = f"{lessons} lessons x {classrooms} classrooms: {why}" + (
                    " (bots' core saturated: the limit is the bots')"
                    if step["bots_saturated"] else "")
                break
        if failed:
            break
    _finish(args, steps, best, stop_reason)
    return 0 if best is not None else 1


def _report(step: dict[str, Any], lessons: int, classrooms: int, why: str) -> None:
    print(f"{lessons:>3} lessons x {classrooms:>3} classrooms: {why}; "
          f"p99 {step.get('forward_latency_ms_p99')} ms, loss {step.get('loss_ratio')}, "
          f"{step.get('forwarded_packets_per_s')} packets/s, server "
          f"{step.get('sfu_cpu_percent_of_core')}% / bots "
          f"{step.get('bot_cpu_percent_of_core')}% of a core; server loop lag max "
          f"{step.get('server_event_loop_lag_max_ms')} ms; machine busy "
          f"{step.get('machine_busy_percent_of_core')}% of 200%", flush=True)


def _finish(args: argparse.Namespace, steps: list[dict[str, Any]], best: dict[str, Any] | None,
            stop_reason: str) -> None:
    result = {
        "test": "capacity",
        "limits": {"forward_latency_ms_p99": args.latency_ms, "loss_ratio": args.loss},
        "nice": args.nice,
        "nodes": args.nodes,
        "independent": bool(args.independent and args.nodes > 1),
        "largest_held": None if best is None else {
            k: best.get(k) for k in (
                "lessons", "classrooms_per_lesson", "subscribers", "forwarded_packets_per_s",
                "sfu_cpu_percent_of_core", "cpu_us_per_forwarded_packet",
                "forward_latency_ms_p99", "loss_ratio", "bot_cpu_percent_of_core")
        },
        "stopped_by": stop_reason,
        "steps": steps,
    }
    if best is None:
        print("no step held: " + stop_reason)
    else:
        print(f"largest load held: {best['lessons']} lessons x {best['classrooms_per_lesson']} "
              f"classrooms ({best['subscribers']} subscriber streams), "
              f"{best['forwarded_packets_per_s']} forwarded packets/s, server "
              f"{best['sfu_cpu_percent_of_core']}% of a core "
              f"({best['cpu_us_per_forwarded_packet']} us/packet); stopped by: {stop_reason}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
