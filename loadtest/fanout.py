"""Fan-out benchmark: one publisher, N subscribers, what one packet forwarded costs the SFU.

``python -m loadtest.fanout --subscribers 200 --seconds 20 --json fanout.json``

Method (docs/performance.md, "Fan-out benchmark"):

* a ``classroom serve --no-demo`` subprocess on 127.0.0.1 (free port, temp data dir, token
  secret from ``CLASSROOM_TOKEN_SECRET``), pinned to core 0 with ``taskset``;
* this process, pinned to core 1, runs every bot (:mod:`loadtest.bots`): one publisher bot
  (lead) replaying the cached 720p VP8 + Opus stream, and N subscriber bots (remote
  classrooms) connected in batches, each doing real ICE/DTLS/SRTP;
* once every subscriber receives video and audio (and a short settle time), a steady window
  of S seconds is measured: the server's own CPU (utime+stime of ``/proc/PID/stat``, all
  threads), the bots' CPU, packets the publisher sent and the subscribers received, and the
  latency of every sampled packet (publisher send → subscriber receive, one clock);
* ``transcodes`` comes from the server's ``/metrics`` (``classroom_transcodes_total``), else
  ``/healthz``, else it is 0 by construction (``classroom serve`` runs ``glue.forbid_codecs()``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.bots import BotStats, PublisherBot, SendLog, SubscriberBot
from loadtest.media import Stream, load_stream
from signaling.tokens import TokenSigner

LESSON = "fanout-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (every thread), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_delay_seconds(pid: int) -> float:
    """Time the process's main thread spent runnable but waiting for a CPU (schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def idle_fraction(interval: float = 3.0) -> float:
    """The machine's idle share (all CPUs) over ``interval`` seconds, from /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)

    idle0, total0 = sample()
    time.sleep(interval)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(timeout: float, threshold: float = 0.85) -> float:
    """Wait (up to ``timeout`` s) until the machine is at least ``threshold`` idle: other
    work on a 2-core machine starves the SFU or the bots and ruins latency and loss."""
    deadline = time.monotonic() + timeout
    idle = idle_fraction()
    while idle < threshold and time.monotonic() < deadline:
        print(f"fanout: machine {1 - idle:.0%} busy, waiting for it to quiet down", file=sys.stderr, flush=True)
        idle = idle_fraction(10.0)
    return idle


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    secret: str
    data_dir: Path
    pinned: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_server(cpu: int | None, python_loop: bool = False, top_layer: bool = False,
                 per_connection_sockets: bool = False, libsrtp_protect: bool = False) -> ServerProcess:
    port = free_port()
    secret = secrets.token_hex(32)
    data_dir = Path(tempfile.mkdtemp(prefix="classroom-fanout-"))
    env = dict(os.environ, CLASSROOM_TOKEN_SECRET=secret)
    env.setdefault("CLASSROOM_MEDIA_UDP_PORT", "0")  # the node's one media port, on a free port
    # the one media port with sendmmsg (the server's default), or a UDP socket per
    # connection and send() per copy, as before #19
    env["CLASSROOM_MEDIA_UDP_MUX"] = "false" if per_connection_sockets else "true"
    if python_loop:
        env["CLASSROOM_MEDIA_COMPILED_FANOUT"] = "false"
    if libsrtp_protect:
        env["CLASSROOM_MEDIA_DIRECT_PROTECT"] = "false"
    if top_layer:  # the bots send no REMB: without this the estimate would pick a lower layer
        env["CLASSROOM_MEDIA_ADAPTIVE_LAYERS"] = "false"
    cmd = [sys.executable, "-m", "classroom.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--data-dir", str(data_dir), "--no-demo",
           "--log-level", "WARNING"]  # fmt: skip
    pinned = cpu is not None and shutil.which("taskset") is not None
    if pinned:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return ServerProcess(proc, port, secret, data_dir, pinned)


async def wait_healthy(server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if server.proc.poll() is not None:
                log = (server.data_dir / "server.log").read_text(errors="replace")
                raise RuntimeError(f"the server exited: {log[-2000:]}")
            try:
                async with http.get(server.url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become healthy")
            await asyncio.sleep(0.1)


async def server_counters(server: ServerProcess) -> dict[str, Any]:
    """``classroom_*`` counters from /metrics, plus where ``transcodes`` was read."""
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.get(server.url + "/metrics") as r:
                if r.status == 200:
                    text = await r.text()
                    for name, metric in (("transcodes", "transcodes"), ("forwarded_packets", "forwarded_packets"),
                                         ("packets_in", "received_packets"), ("forwarded_in_c", "forwarded_in_c"),
                                         ("dropped_congested", "dropped_congested")):
                        m = re.search(rf"^classroom_{metric}_total(?:{{}})? (\S+)$", text, re.M)
                        if m:
                            out[name] = int(float(m.group(1)))
                    if "transcodes" in out:
                        out["transcodes_source"] = "/metrics classroom_transcodes_total"
                    m = re.search(r"^classroom_event_loop_lag_max_seconds(?:{})? (\S+)$", text, re.M)
                    if m:
                        out["loop_lag_max_ms"] = round(float(m.group(1)) * 1000, 2)
                    # the SFU's own ingress -> last-subscriber-sent time, cumulative histogram
                    buckets = [
                        (float(le), float(v))
                        for le, v in re.findall(
                            r'^classroom_forwarding_latency_seconds_bucket{le="([^"]+)"} (\S+)$', text, re.M
                        )
                        if le != "+Inf"
                    ]
                    out["forward_latency_buckets"] = buckets
        except aiohttp.ClientError:
            pass
        if "transcodes" not in out:
            try:
                async with http.get(server.url + "/healthz") as r:
                    health = await r.json()
                if "transcodes" in health:
                    out["transcodes"] = int(health["transcodes"])
                    out["transcodes_source"] = "/healthz"
            except (aiohttp.ClientError, ValueError):
                pass
    if "transcodes" not in out:
        out["transcodes"] = 0
        out["transcodes_source"] = "by construction: classroom serve runs glue.forbid_codecs()"
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100.0 * (len(values) - 1))))
    return values[k]


@dataclass
class Snapshot:
    t: float
    sfu_cpu: float
    bot_cpu: float
    sfu_wait: float
    bot_wait: float
    pub: BotStats
    subs: list[BotStats]
    counters: dict[str, Any]
    kernel_udp: dict[str, int]


def kernel_udp_counters() -> dict[str, int]:
    """The kernel's UDP error counters (machine-wide, /proc/net/snmp): where a datagram the SFU
    sent, or a bot should have received, was lost — a full receive buffer, a full send buffer."""
    try:
        lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    wanted = ("InErrors", "RcvbufErrors", "SndbufErrors")
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=False) if k in wanted}


async def sending_gap(pub: PublisherBot, gap_s: float = 0.005, timeout_s: float = 2.0) -> bool:
    """Wait for a moment when the publisher has sent nothing for ``gap_s`` (between its frames):
    everything it sent before has then been forwarded and read by the bots (forwarding p99 is
    ~2 ms; the loop ran their receive callbacks during the wait), so a snapshot taken right after
    counts no packet as sent but not yet received. Without it the loss ratio moved by ±1 packet
    × N at each window edge (±0.0002 at N = 200). False if no such gap came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = sum(pub.stats.sent.values())
        await asyncio.sleep(gap_s)
        if sum(pub.stats.sent.values()) == before:
            return True
    return False


async def snapshot(server: ServerProcess, pub: PublisherBot, subs: list[SubscriberBot]) -> Snapshot:
    counters = await server_counters(server)
    await sending_gap(pub)
    # the counters of both sides at one instant (one synchronous block)
    return Snapshot(
        t=time.monotonic(),
        sfu_cpu=proc_cpu_seconds(server.proc.pid),
        bot_cpu=self_cpu_seconds(),
        sfu_wait=run_delay_seconds(server.proc.pid),
        bot_wait=run_delay_seconds(os.getpid()),
        pub=pub.stats.copy(),
        subs=[s.stats.copy() for s in subs],
        counters=counters,
        kernel_udp=kernel_udp_counters(),
    )


async def run(args: argparse.Namespace, stream: Stream) -> dict[str, Any]:
    server = start_server(None if args.no_pin else args.sfu_cpu, args.python_loop, top_layer=args.simulcast,
                          per_connection_sockets=args.per_connection_sockets, libsrtp_protect=args.libsrtp_protect)
    pub: PublisherBot | None = None
    subs: list[SubscriberBot] = []
    try:
        await wait_healthy(server)
        signer = TokenSigner(server.secret.encode())
        log = SendLog()
        setup0 = time.monotonic()
        pub = PublisherBot(server.url, signer.issue(LESSON, "lead", "lead"), stream, send_log=log,
                           simulcast=args.simulcast)
        await pub.start()
        for first in range(0, args.subscribers, args.batch):
            batch = [
                SubscriberBot(
                    server.url,
                    signer.issue(LESSON, f"remote-{i:04d}", "remote"),
                    sample_every=args.sample_every,
                    send_log=log,
                )
                for i in range(first, min(args.subscribers, first + args.batch))
            ]
            subs.extend(batch)
            await asyncio.gather(*(s.start() for s in batch))
            try:
                await asyncio.gather(*(s.wait_receiving(timeout=60) for s in batch))
            except Exception as exc:
                state = pub.pc.connectionState if pub.pc else None
                raise RuntimeError(
                    f"batch at {first}: {exc}; publisher {state}, sent {pub.stats.sent}, "
                    f"send failures {pub.stats.send_failures}, "
                    f"receiving {sum(1 for s in subs if s.received_packets)}/{len(subs)}"
                ) from exc
        setup_s = time.monotonic() - setup0
        await asyncio.sleep(args.settle)
        # The bots' own garbage collector would pause their receive loop and show up as
        # forwarding latency: everything allocated so far is kept out of its sight.
        gc.collect()
        gc.freeze()
        for s in subs:
            s.stats.latencies_ms.clear()
            s.stats.socket_latencies_ms.clear()
        a = await snapshot(server, pub, subs)
        print(
            f"fanout: {len(subs)} subscribers receiving after {setup_s:.1f} s; measuring "
            f"{args.seconds:g} s (server pid {server.proc.pid})",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.sleep(args.seconds)
        b = await snapshot(server, pub, subs)
        if b.pub.sent["video"] == a.pub.sent["video"]:
            raise RuntimeError(
                f"the publisher sent nothing in the window ({pub.pc and pub.pc.connectionState}): "
                "a starved bot process loses its ICE consent; see the machine's load"
            )
        return summarize(args, server, a, b, setup_s, stream)
    finally:
        await asyncio.gather(*(s.stop() for s in subs), return_exceptions=True)
        if pub is not None:
            await pub.stop()
        server.stop()


def summarize(
    args: argparse.Namespace,
    server: ServerProcess,
    a: Snapshot,
    b: Snapshot,
    setup_s: float,
    stream: Stream,
) -> dict[str, Any]:
    window = b.t - a.t
    pairs = list(zip(a.subs, b.subs, strict=True))
    sent = {k: b.pub.sent[k] - a.pub.sent[k] for k in ("video", "audio")}
    expected_each = sum(sent.values())
    received = [sum(y.received.values()) - sum(x.received.values()) for x, y in pairs]
    forwarded = sum(received)
    expected = expected_each * len(received)
    loss = max(0.0, 1.0 - forwarded / expected) if expected else float("nan")
    sfu_cpu = b.sfu_cpu - a.sfu_cpu
    bot_cpu = b.bot_cpu - a.bot_cpu
    latencies = [ms for s in b.subs for ms in s.latencies_ms]
    socket_latencies = [ms for s in b.subs for ms in s.socket_latencies_ms]
    verified = sum(y.verified - x.verified for x, y in pairs)
    mismatched = sum(y.mismatched - x.mismatched for x, y in pairs)
    srtp_errors = sum(y.srtp_errors - x.srtp_errors for x, y in pairs)
    server_fwd = None
    if "forwarded_packets" in a.counters and "forwarded_packets" in b.counters:
        server_fwd = b.counters["forwarded_packets"] - a.counters["forwarded_packets"]
    # the share of the server's forwarding done by the compiled loop (sfu/_fanout.c)
    c_share = None
    if server_fwd and "forwarded_in_c" in a.counters and "forwarded_in_c" in b.counters:
        c_share = round((b.counters["forwarded_in_c"] - a.counters["forwarded_in_c"]) / server_fwd, 4)
    dropped = None
    if "dropped_congested" in a.counters and "dropped_congested" in b.counters:
        dropped = b.counters["dropped_congested"] - a.counters["dropped_congested"]
    kernel = {k: b.kernel_udp.get(k, 0) - a.kernel_udp.get(k, 0) for k in b.kernel_udp}
    return {
        "server_dropped_congested": dropped,  # copies the kernel refused (then: wait for a keyframe)
        "kernel_udp_errors": kernel,  # machine-wide /proc/net/snmp deltas over the window
        "subscribers": len(received),
        "seconds": round(window, 3),
        "forwarded_packets": forwarded,
        "forwarded_packets_per_s": round(forwarded / window, 1),
        "server_forwarded_packets": server_fwd,
        "forwarded_in_c_share": c_share,
        "publisher_packets": sent,
        "sfu_cpu_seconds": round(sfu_cpu, 3),
        "sfu_cpu_fraction": round(sfu_cpu / window, 3),
        "cpu_us_per_forwarded_packet": round(sfu_cpu * 1e6 / forwarded, 2) if forwarded else None,
        "forward_latency_ms_p50": round(percentile(latencies, 50), 3),
        "forward_latency_ms_p99": round(percentile(latencies, 99), 3),
        "forward_latency_ms_mean": round(statistics.fmean(latencies), 3) if latencies else None,
        "latency_samples": len(latencies),
        "socket_latency_ms_p50": round(percentile(socket_latencies, 50), 3),
        "socket_latency_ms_p99": round(percentile(socket_latencies, 99), 3),
        "loss_ratio": round(loss, 6),
        "min_subscriber_ratio": round(min(received) / expected_each, 4) if expected_each else None,
        "verified_samples": verified,
        "mismatched_samples": mismatched,
        "srtp_errors": srtp_errors,
        "transcodes": b.counters["transcodes"],
        "transcodes_source": b.counters["transcodes_source"],
        # inside the SFU: arrival of a packet -> sent to its last subscriber (window only)
        "sfu_internal_forward_ms_p99": internal_p99(a.counters, b.counters),
        "sfu_loop_lag_max_ms": b.counters.get("loop_lag_max_ms"),
        "bot_cpu_seconds": round(bot_cpu, 3),
        "bot_cpu_fraction": round(bot_cpu / window, 3),
        # runnable but not running (other processes had the CPU): a starved, invalid run
        "sfu_runqueue_wait_fraction": round((b.sfu_wait - a.sfu_wait) / window, 3),
        "bot_runqueue_wait_fraction": round((b.bot_wait - a.bot_wait) / window, 3),
        "setup_seconds": round(setup_s, 1),
        "compiled_fanout": not args.python_loop,
        "direct_protect": not args.libsrtp_protect,  # AES-GCM by sfu._fanout.AeadSession, else libsrtp
        # one shared media port with sendmmsg (media.udp_mux), or a socket per connection
        "media_port": "per-connection sockets" if args.per_connection_sockets else "one shared port (sendmmsg)",
        "simulcast_publisher": bool(args.simulcast),
        "sfu_pinned_cpu": None if not server.pinned else args.sfu_cpu,
        "bots_pinned_cpu": None if args.no_pin else args.bot_cpu,
        "video_bitrate_mbps": round(stream.video_bitrate / 1e6, 3),
        # other work on the machine skews latency (and a little CPU): keep it with the figures
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "sample_every": args.sample_every,
        "nice": args.nice,
    }


def internal_p99(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """p99 of the SFU's own forwarding time over the window, from its cumulative histogram
    (the upper bound of the bucket that holds the 99th percentile, in ms)."""
    before = dict(a.get("forward_latency_buckets", []))
    after = b.get("forward_latency_buckets", [])
    if not after:
        return None
    counts = [(le, v - before.get(le, 0.0)) for le, v in after]
    total = counts[-1][1]
    if total <= 0:
        return None
    for le, v in counts:
        if v >= 0.99 * total:
            return round(le * 1000, 3)
    return None


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("subscribers", r["subscribers"]),
        ("window s", r["seconds"]),
        ("forwarded packets (received by bots)", r["forwarded_packets"]),
        ("forwarded packets/s", r["forwarded_packets_per_s"]),
        ("SFU CPU s (core share)", f"{r['sfu_cpu_seconds']} ({r['sfu_cpu_fraction']:.0%})"),
        ("SFU CPU µs / forwarded packet", r["cpu_us_per_forwarded_packet"]),
        ("latency p50 / p99 ms", f"{r['forward_latency_ms_p50']} / {r['forward_latency_ms_p99']}"),
        ("  to the subscriber's socket (kernel time) p50 / p99 ms",
         f"{r['socket_latency_ms_p50']} / {r['socket_latency_ms_p99']}"),
        ("loss ratio", r["loss_ratio"]),
        ("  server: copies refused by the kernel (then a keyframe wait)", r["server_dropped_congested"]),
        ("  kernel UDP errors in the window (rcvbuf / sndbuf)",
         f"{r['kernel_udp_errors'].get('RcvbufErrors', '?')} / {r['kernel_udp_errors'].get('SndbufErrors', '?')}"),
        ("media sockets", r["media_port"]),
        ("forwarded by the compiled loop (sfu/_fanout.c)",
         "n/a" if r["forwarded_in_c_share"] is None else f"{r['forwarded_in_c_share']:.1%}"),
        ("inside the SFU: forwarding p99 ms / loop lag max ms",
         f"{r['sfu_internal_forward_ms_p99']} / {r['sfu_loop_lag_max_ms']}"),
        ("sampled payloads verified / mismatched",
         f"{r['verified_samples']} / {r['mismatched_samples']}"),
        ("transcodes", f"{r['transcodes']} ({r['transcodes_source']})"),
        ("bot CPU s (core share)", f"{r['bot_cpu_seconds']} ({r['bot_cpu_fraction']:.0%})"),
        ("run-queue wait SFU / bots (starvation)",
         f"{r['sfu_runqueue_wait_fraction']:.0%} / {r['bot_runqueue_wait_fraction']:.0%}"),
        ("machine load average (1 min)", r["loadavg_1min"]),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--batch", type=int, default=20, help="subscribers connected at a time")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before the window")
    parser.add_argument(
        "--sample-every",
        type=int,
        default=10,
        help="unprotect and verify every n-th packet per subscriber",
    )
    parser.add_argument("--sfu-cpu", type=int, default=0)
    parser.add_argument("--bot-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the SFU or the bots")
    parser.add_argument("--simulcast", action="store_true",
                        help="the publisher sends three simulcast layers (q, h, f); every subscriber gets the top one")
    parser.add_argument("--python-loop", action="store_true",
                        help="run the server with media.compiled_fanout off (the pure-Python loop), to compare")
    parser.add_argument("--libsrtp-protect", action="store_true",
                        help="run the server with media.direct_protect off (libsrtp protects every copy), to compare")
    parser.add_argument("--per-connection-sockets", action="store_true",
                        help="run the server with media.udp_mux off (a UDP socket per connection, send() per "
                             "copy), for the ratio to the shared port's sendmmsg")
    parser.add_argument(
        "--nice", type=int, default=0, help="niceness for the bots and the server (e.g. -10 on a shared machine)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be >= 85%% idle",
    )
    args = parser.parse_args(argv)
    idle_before = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else idle_fraction(1.0)
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # the server subprocess inherits it

    stream = load_stream()
    if not args.no_pin:
        try:
            os.sched_setaffinity(0, {args.bot_cpu})
        except (AttributeError, OSError) as exc:
            print(f"fanout: cannot pin the bots to CPU {args.bot_cpu}: {exc}", file=sys.stderr)
    try:
        import uvloop

        result = uvloop.run(run(args, stream))
    except ImportError:
        result = asyncio.run(run(args, stream))
    result["machine_idle_before"] = round(idle_before, 3)
    print(f"Fan-out benchmark: 1 publisher (720p VP8 {result['video_bitrate_mbps']} Mbit/s + Opus) "
          f"→ {result['subscribers']} subscribers")  # fmt: skip
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
