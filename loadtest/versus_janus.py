"""Side by side: our SFU and Janus forwarding the same pre-encoded stream to N subscribers.

    python -m loadtest.versus_janus --subscribers 100 --seconds 25 --json PATH

The comparison is WebRTC against WebRTC: on both sides the subscribers are the same lean
aiortc bots (``loadtest.bots.SubscriberBot``: real ICE, DTLS and SRTP, SRTP datagrams counted
at the socket, every 10th unprotected and matched to the publisher's send log for latency), and
the publisher replays the same cached 720p VP8 + Opus stream (``loadtest.media``) with the
same pacing (``loadtest.bots.PublisherBot``). Differences, stated plainly:

* ours: the publisher bot publishes over WebRTC (ICE + DTLS + SRTP, the classroom protocol);
* Janus: the same publisher's packets go as plain RTP into a VideoRoom *remote publisher*
  (``add_remote_publisher``, SSRC 1000 + 10 × mindex), since Janus needs a browser-like
  publisher otherwise. That is one incoming stream (237 packets/s) against N × 237 out.

Janus never gathers ICE candidates on loopback, so the whole comparison runs inside a network
namespace made for it (``ip netns``) holding a veth pair 10.99.0.1/10.99.0.2 and no route out:
Janus's ICE is restricted to 10.99.0.1 and the Janus-side bots use that address; our server
and its bots use 127.0.0.1 in the same namespace; all HTTP/WebSocket control is on 127.0.0.1.

Per run, the SFU (``classroom serve`` or ``janus``) is pinned to core 0 and one bot process
(publisher + N subscribers) to core 1. After every subscriber receives and a warm-up, a
``--seconds`` window is measured: the SFU process's own CPU (utime + stime of all its threads,
``/proc/PID/stat``) ÷ RTP packets the subscribers received = ``cpu_us_per_forwarded_packet``;
``forward_latency_ms_p99`` from the sampled packets; ``loss_ratio`` = 1 − received ÷ (sent ×
subscribers). The sides alternate (ours, Janus, ours, Janus, … ``--rounds``) and the report
gives each side's median over rounds, and ``ratio`` = ours ÷ Janus of CPU per forwarded packet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from loadtest.serverproc import (
    REPO_ROOT,
    cpu_seconds,
    machine_cpu,
    machine_load,
    start_server,
    wrap_command,
)

NETNS_ADDRESS = "10.99.0.1"
NETNS_PEER = "10.99.0.2"


# --- the bot process (one per run, on core 1) -------------------------------------------------


class _JanusSignaling:
    """Stands in for the classroom WebSocket of a SubscriberBot: its answer goes to Janus."""

    def __init__(self, room: Any, handle: int) -> None:
        self.room = room
        self.handle = handle
        self.errors: list[dict[str, Any]] = []
        self.handlers: dict[str, Any] = {}

    async def connect(self, timeout: float = 20.0) -> dict[str, Any]:
        return {}

    async def send(self, msg: dict[str, Any]) -> int:
        if msg.get("type") == "subscribe_answer":
            await self.room.start(self.handle, msg["sdp"])
        return 0

    async def close(self) -> None:
        return None


class _PlainRtp:
    """What PublisherBot sends through, for Janus: plain RTP to the remote publisher's port."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.addr = ("127.0.0.1", port)
        self.connected = True

    def send_rtp(self, packet: bytes) -> bool:
        try:
            self.sock.sendto(packet, self.addr)
        except OSError:
            return False
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        return True  # sender reports are not needed by a remote publisher

    def close(self) -> None:
        self.sock.close()


async def _gather_limited(coros: list[Any], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


async def _measure(
    pub: Any, subs: list[Any], sfu_pid: int, warmup: float, seconds: float
) -> dict[str, Any]:
    await asyncio.sleep(warmup)
    live = [s for s in subs if s.received_packets > 0]
    before = [s.stats.copy() for s in live]
    pub0 = pub.stats.copy()
    cpu0 = cpu_seconds(sfu_pid)
    m0 = machine_cpu()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    cpu1 = cpu_seconds(sfu_pid)
    m1 = machine_cpu()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    after = [s.stats.copy() for s in live]
    pub1 = pub.stats.copy()
    sent = sum(pub1.sent.values()) - sum(pub0.sent.values())
    pairs = list(zip(after, before, strict=True))
    received = sum(sum(a.received.values()) - sum(b.received.values()) for a, b in pairs)
    latencies: list[float] = []
    for a, b in pairs:
        latencies.extend(a.latencies_ms[len(b.latencies_ms):])
    latencies.sort()
    sfu_cpu = cpu1 - cpu0
    bot_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    expected = sent * len(live)

    def pct(q: float) -> float:
        if not latencies:
            return math.nan
        return latencies[min(len(latencies) - 1, max(0, math.ceil(q * len(latencies)) - 1))]

    return {
        "subscribers_receiving": len(live),
        "window_s": round(wall, 2),
        "sent_packets": sent,
        "sent_packets_per_s": round(sent / wall, 1),
        "forwarded_packets": received,
        "forwarded_packets_per_s": round(received / wall, 1),
        "sfu_cpu_s": round(sfu_cpu, 3),
        "sfu_cpu_percent_of_core": round(100 * sfu_cpu / wall, 1),
        "cpu_us_per_forwarded_packet": round(sfu_cpu * 1e6 / received, 2) if received else None,
        "forward_latency_ms_p50": round(pct(0.50), 2),
        "forward_latency_ms_p99": round(pct(0.99), 2),
        "latency_samples": len(latencies),
        "loss_ratio": round(max(0.0, 1 - received / expected), 5) if expected else None,
        "bot_cpu_percent_of_core": round(100 * bot_cpu / wall, 1),
        "verified": sum(a.verified - b.verified for a, b in pairs),
        "mismatched": sum(a.mismatched - b.mismatched for a, b in pairs),
        "srtp_errors": sum(a.srtp_errors - b.srtp_errors for a, b in pairs),
        **machine_load(m0, m1, wall),
    }


async def _bots_ours(args: argparse.Namespace) -> dict[str, Any]:
    from loadtest.bots import PublisherBot, SubscriberBot
    from loadtest.media import load_stream
    from sfu import glue
    from signaling.tokens import TokenSigner

    glue.configure_ice(["127.0.0.1"])
    signer = TokenSigner(os.environ["CLASSROOM_TOKEN_SECRET"].encode())
    lesson = "versus-janus"
    stream = load_stream()
    pub = PublisherBot(args.url, signer.issue(lesson, "lead", "lead", "Lead"), stream)
    await pub.start()
    subs = [
        SubscriberBot(args.url, signer.issue(lesson, f"r{i}", "remote", f"Remote {i}"))
        for i in range(args.subscribers)
    ]
    try:
        return await _start_and_measure(pub, subs, args, lambda s: s.start())
    finally:
        await _gather_limited([s.stop() for s in subs], 20)
        await pub.stop()


async def _bots_janus(args: argparse.Namespace) -> dict[str, Any]:
    from loadtest.bots import PublisherBot, SubscriberBot
    from loadtest.janus import JanusSession, VideoRoom
    from loadtest.media import load_stream
    from sfu import glue

    glue.configure_ice([args.ice_address])
    session = await JanusSession.create(args.janus_url)
    room = VideoRoom(session)
    await room.create()
    port = await room.add_remote_publisher()
    stream = load_stream()
    pub = PublisherBot("http://127.0.0.1:9", "unused", stream)
    raw = _PlainRtp(port)
    pub._raw = raw  # type: ignore[assignment]
    for s in room.streams:
        pub._streams[s.kind] = SimpleNamespace(  # type: ignore[assignment]
            kind=s.kind, codecs=[SimpleNamespace(payload_type=s.payload_type)], ssrcs=[s.ssrc]
        )
    pub._task = asyncio.get_running_loop().create_task(pub._run())
    subs = [SubscriberBot("http://127.0.0.1:9", "unused") for _ in range(args.subscribers)]

    async def start_one(bot: Any) -> None:
        handle, offer = await room.subscribe()
        bot.signaling = _JanusSignaling(room, handle)
        await bot._on_offer({"sdp": offer, "tracks": []})

    try:
        return await _start_and_measure(pub, subs, args, start_one)
    finally:
        await _gather_limited([s.stop() for s in subs], 20)
        await pub.stop()
        raw.close()
        await session.close()


async def _start_and_measure(
    pub: Any, subs: list[Any], args: argparse.Namespace, start: Any
) -> dict[str, Any]:
    t0 = time.monotonic()
    results = await _gather_limited([start(s) for s in subs], 8)
    start_errors = [repr(r) for r in results if isinstance(r, BaseException)]
    waits = await _gather_limited(
        [s.wait_receiving(timeout=args.connect_timeout) for s in subs], 200
    )
    wait_errors = [repr(r) for r in waits if isinstance(r, BaseException)]
    setup_s = time.monotonic() - t0
    out = await _measure(pub, subs, args.sfu_pid, args.warmup, args.seconds)
    out.update(
        subscribers=len(subs),
        setup_s=round(setup_s, 1),
        start_errors=start_errors[:5],
        start_error_count=len(start_errors),
        receive_errors=wait_errors[:3],
        receive_error_count=len(wait_errors),
    )
    return out


def _bot_main(args: argparse.Namespace) -> int:
    runner = _bots_ours if args.bots == "ours" else _bots_janus
    try:
        import uvloop

        result = uvloop.run(runner(args))
    except ImportError:
        result = asyncio.run(runner(args))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --- one run: an SFU on core 0, a bot process on core 1 ---------------------------------------


def _run_bots(side: str, extra: list[str], args: argparse.Namespace,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "loadtest.versus_janus", "--bots", side,
        "--subscribers", str(args.subscribers), "--seconds", str(args.seconds),
        "--warmup", str(args.warmup), "--connect-timeout", str(args.connect_timeout), *extra,
    ]
    cmd = wrap_command(cmd, 1, args.nice)
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    budget = args.seconds + args.warmup + args.connect_timeout + 3 * args.subscribers + 120
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env,
                          cwd=str(REPO_ROOT), timeout=budget)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT "):])
            return result
    raise RuntimeError(f"{side} bots failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    server = start_server(cpu=0, nice=args.nice)
    try:
        env = dict(os.environ, CLASSROOM_TOKEN_SECRET=server.secret)
        result = _run_bots("ours", ["--url", server.base_url, "--sfu-pid", str(server.pid)],
                           args, env)
        result["sfu_alive_after"] = server.alive()
        return result
    finally:
        server.stop()


def run_janus(args: argparse.Namespace) -> dict[str, Any]:
    from loadtest.janus import start_janus

    janus = start_janus(NETNS_ADDRESS, cpu=0, nice=args.nice)
    try:
        result = _run_bots(
            "janus",
            ["--janus-url", janus.url, "--sfu-pid", str(janus.pid),
             "--ice-address", NETNS_ADDRESS],
            args,
        )
        result["sfu_alive_after"] = janus.proc.poll() is None
        return result
    except Exception:
        sys.stderr.write(janus.log_tail(30) + "\n")
        raise
    finally:
        janus.stop()


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and not (
        isinstance(r.get(key), float) and math.isnan(r[key]))]
    return round(statistics.median(vals), 3) if vals else None


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("cpu_us_per_forwarded_packet", "forward_latency_ms_p50", "forward_latency_ms_p99",
            "loss_ratio", "forwarded_packets_per_s", "sfu_cpu_percent_of_core",
            "bot_cpu_percent_of_core", "subscribers_receiving", "sent_packets_per_s",
            "machine_busy_percent_of_core", "machine_steal_percent_of_core")
    return {k: _median(runs, k) for k in keys}


def _inner_main(args: argparse.Namespace) -> int:
    from loadtest.janus import janus_version

    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "janus": []}
    order = ["ours", "janus"]
    for r in range(args.rounds):
        for side in order if r % 2 == 0 else order[::-1]:
            t0 = time.monotonic()
            try:
                res = run_ours(args) if side == "ours" else run_janus(args)
            except Exception as exc:  # report the failure, keep the other side's figures
                res = {"error": repr(exc)[:2000]}
            res["round"] = r
            res["elapsed_s"] = round(time.monotonic() - t0, 1)
            runs[side].append(res)
            cpu = res.get("cpu_us_per_forwarded_packet")
            print(f"[round {r}] {side:<5}: {cpu} us/packet, p99 "
                  f"{res.get('forward_latency_ms_p99')} ms, loss {res.get('loss_ratio')}, "
                  f"{res.get('forwarded_packets_per_s')} packets/s, bots "
                  f"{res.get('bot_cpu_percent_of_core')}% of a core"
                  + (f"  ERROR {res['error'][:300]}" if "error" in res else ""),
                  file=sys.stderr, flush=True)
    ours, janus = _summary(runs["ours"]), _summary(runs["janus"])
    a, b = ours["cpu_us_per_forwarded_packet"], janus["cpu_us_per_forwarded_packet"]
    result = {
        "test": "versus_janus",
        "subscribers": args.subscribers,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "nice": args.nice,
        "pairing": "WebRTC subscribers (ICE+DTLS+SRTP) on both sides; publisher: WebRTC into "
                   "ours, plain RTP into a Janus VideoRoom remote publisher",
        "janus_version": janus_version(),
        "ours": ours,
        "janus": janus,
        "ratio": round(a / b, 3) if a and b else None,
        "runs": runs,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --- the outer process: make the namespace, run inside it -------------------------------------


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=20)


def _make_netns(name: str) -> None:
    _ip("netns", "add", name)
    ns = ["netns", "exec", name, "ip"]
    _ip(*ns, "link", "set", "lo", "up")
    _ip(*ns, "link", "add", "vj0", "type", "veth", "peer", "name", "vj1")
    _ip(*ns, "addr", "add", f"{NETNS_ADDRESS}/24", "dev", "vj0")
    _ip(*ns, "addr", "add", f"{NETNS_PEER}/24", "dev", "vj1")
    _ip(*ns, "link", "set", "vj0", "up")
    _ip(*ns, "link", "set", "vj1", "up")


def _print_result(result: dict[str, Any]) -> None:
    for side in ("ours", "janus"):
        s = result[side]
        print(f"{side:<6} cpu_us_per_forwarded_packet {s['cpu_us_per_forwarded_packet']}  "
              f"forward_latency_ms_p99 {s['forward_latency_ms_p99']}  "
              f"loss_ratio {s['loss_ratio']}  forwarded/s {s['forwarded_packets_per_s']}  "
              f"SFU {s['sfu_cpu_percent_of_core']}% / bots {s['bot_cpu_percent_of_core']}% "
              f"of a core; receiving {s['subscribers_receiving']}/{result['subscribers']}, "
              f"publisher {s['sent_packets_per_s']} packets/s, machine busy "
              f"{s['machine_busy_percent_of_core']}% + steal "
              f"{s['machine_steal_percent_of_core']}% (of 200%)")
    print(f"ratio (ours / Janus, CPU per forwarded packet): {result['ratio']}  "
          f"(goal <= 1.0)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.versus_janus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=25.0, help="measured window per run")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2, help="runs per side, alternating")
    ap.add_argument("--connect-timeout", type=float, default=60.0)
    ap.add_argument("--nice", type=int, default=0,
                    help="niceness of both SFUs and the bots (e.g. -10 on a shared machine)")
    ap.add_argument("--json", help="write the result here")
    # internal
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bots", choices=["ours", "janus"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--janus-url", help=argparse.SUPPRESS)
    ap.add_argument("--sfu-pid", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ice-address", default=NETNS_ADDRESS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bots:
        return _bot_main(args)
    if args.inner:
        return _inner_main(args)

    from loadtest.janus import ensure_installed

    ensure_installed()
    ns = f"clsbench{os.getpid()}"
    _make_netns(ns)
    try:
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "loadtest.versus_janus",
               "--inner", "--subscribers", str(args.subscribers), "--seconds", str(args.seconds),
               "--warmup", str(args.warmup), "--rounds", str(args.rounds),
               "--connect-timeout", str(args.connect_timeout), "--nice", str(args.nice)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env,
                              cwd=str(REPO_ROOT))
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            break
    if result is None:
        print(f"versus_janus failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    _print_result(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    ok = result["ours"]["cpu_us_per_forwarded_packet"] and result["janus"][
        "cpu_us_per_forwarded_packet"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
