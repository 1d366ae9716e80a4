"""What every fuzzer shares: the seed, the time budget, a real ``classroom serve`` and a
watchdog classroom that keeps pinging it.

* ``CLASSROOM_FUZZ_SECONDS`` (seconds per fuzzer; unset: each fuzzer's CI default, 8–10 s,
  all of them together under a minute) and ``CLASSROOM_FUZZ_SEED`` (default 14) choose the run.
* :class:`Watchdog` runs in a thread with its own event loop (so the fuzzer's own work does not
  delay it): a classroom joined to a lesson of its own sends ``ping`` every 50 ms and times the
  ``pong``; every 0.5 s it reads ``/metrics`` for the event loop's lag and the ``internal``
  errors. :meth:`Live.check` asserts the suite's invariants at the end of each fuzzer.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtest.bots import PublisherBot, SubscriberBot
from loadtest.media import StreamSpec, load_stream
from loadtest.serverproc import ServerProcess, start_server

SEED = int(os.environ.get("CLASSROOM_FUZZ_SEED", "14"))
MAX_PING_S = 0.100
MAX_LOOP_LAG_S = 0.050


def budget(default_s: float) -> float:
    """Seconds this fuzzer runs: ``CLASSROOM_FUZZ_SECONDS`` if set, else its CI default."""
    value = os.environ.get("CLASSROOM_FUZZ_SECONDS", "").strip()
    return float(value) if value else default_s


def report(record_property: Callable[[str, object], None], name: str, inputs: int, seconds: float,
           **extra: object) -> None:
    """Print the number of inputs tried (visible with ``pytest -s``) and put it in the junit XML."""
    figures = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"\nFUZZ {name}: {inputs} inputs in {seconds:.1f} s (seed {SEED}) {figures}".rstrip())
    record_property("fuzz_inputs", inputs)
    record_property("fuzz_seconds", round(seconds, 1))
    record_property("fuzz_seed", SEED)
    for k, v in extra.items():
        record_property(f"fuzz_{k}", v)


_METRIC = re.compile(r'^([a-z_]+)(\{[^}]*\})? ([-+0-9.eEinfa]+)$', re.M)


def metrics(base_url: str) -> dict[str, float]:
    """``/metrics`` as ``{name{labels}: value}``."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1) + (m.group(2) or ""): float(m.group(3)) for m in _METRIC.finditer(text)}


def internal_errors(values: dict[str, float]) -> float:
    return values.get('classroom_signaling_errors_total{code="internal"}', 0.0)


@dataclass
class WatchResult:
    pings: int = 0
    max_rtt_s: float = 0.0
    slow_pings: list[tuple[float, float]] = field(default_factory=list)  # (time.monotonic() sent, rtt)
    lag_max_s: float = 0.0
    lag_samples: int = 0
    internal_errors: float = 0.0
    failures: list[str] = field(default_factory=list)


class Watchdog:
    """A joined classroom in a lesson of its own, pinging every 50 ms, in its own thread."""

    def __init__(self, base_url: str, token: str, every_s: float = 0.05) -> None:
        self.base_url = base_url
        self.token = token
        self.every_s = every_s
        self.result = WatchResult()
        self._stop = threading.Event()
        self._joined = threading.Event()
        self._thread = threading.Thread(target=self._main, name="fuzz-watchdog", daemon=True)
        self._t0 = time.monotonic()

    def start(self) -> None:
        self._thread.start()
        if not self._joined.wait(20):
            raise RuntimeError(f"watchdog did not join: {self.result.failures}")

    def stop(self) -> WatchResult:
        self._stop.set()
        self._thread.join(15)
        return self.result

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:  # reported by check()
            self.result.failures.append(f"watchdog: {exc!r}")
            self._joined.set()

    async def _run(self) -> None:
        res = self.result
        url = self.base_url.replace("http", "ws", 1) + "/ws"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"v": 1, "id": 1, "type": "join", "token": self.token}))
            joined = await self._reply(ws, 1, 10.0)
            if joined.get("type") != "joined":
                raise RuntimeError(f"watchdog join: {joined}")
            self._joined.set()
            self._t0 = time.monotonic()
            scraper = asyncio.get_running_loop().create_task(self._scrape())
            ref = 1
            try:
                while not self._stop.is_set():
                    ref += 1
                    sent = time.monotonic()
                    await ws.send_str(json.dumps({"v": 1, "id": ref, "type": "ping"}))
                    reply = await self._reply(ws, ref, 5.0)
                    rtt = time.monotonic() - sent
                    if reply.get("type") != "pong":
                        res.failures.append(f"ping answered {reply}")
                    res.pings += 1
                    res.max_rtt_s = max(res.max_rtt_s, rtt)
                    if rtt > MAX_PING_S:
                        res.slow_pings.append((sent, round(rtt, 3)))
                    await asyncio.sleep(self.every_s)
            finally:
                scraper.cancel()

    async def _reply(self, ws: aiohttp.ClientWebSocketResponse, ref: int, timeout: float) -> dict[str, Any]:
        while True:
            msg = await ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"watchdog socket: {msg}")
            data = json.loads(msg.data)
            if data.get("re") == ref:
                return dict(data)

    async def _scrape(self) -> None:
        res = self.result
        loop = asyncio.get_running_loop()
        while True:
            try:
                values = await loop.run_in_executor(None, metrics, self.base_url)
                res.lag_samples += 1
                res.lag_max_s = max(res.lag_max_s, values.get("classroom_event_loop_lag_max_seconds", 0.0))
                res.internal_errors = internal_errors(values)
            except Exception as exc:
                res.failures.append(f"/metrics: {exc!r}")
            await asyncio.sleep(0.5)


TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Task exception was never retrieved",
                     "Exception in callback")


@dataclass
class Live:
    """A running ``classroom serve`` with its watchdog, for one fuzzer."""

    server: ServerProcess
    watchdog: Watchdog
    http_5xx: int = 0
    internal_replies: list[str] = field(default_factory=list)
    # (time.monotonic(), what) of each input, to name what was sent just before a slow ping
    inputs: list[tuple[float, str]] = field(default_factory=list)

    def sent(self, what: object) -> None:
        text = repr(what)
        self.inputs.append((time.monotonic(), text[:160] + (f"...({len(text)} chars)" if len(text) > 160 else "")))

    def before(self, t: float, window_s: float = 0.6) -> list[str]:
        return [w for (u, w) in self.inputs if t - window_s <= u <= t + 0.05][-8:]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def token(self, lesson: str, classroom: str, role: str) -> str:
        return self.server.signer.issue(lesson, classroom, role, classroom, lesson_title="fuzz")

    def tracebacks(self) -> list[str]:
        lines = list(self.server.lines)
        out = []
        for i, line in enumerate(lines):
            if any(m in line for m in TRACEBACK_MARKERS):
                out.append("\n".join(lines[i : i + 40]))
        return out

    def check(self) -> WatchResult:
        """The invariants of every fuzzer; returns the watchdog's figures."""
        res = self.watchdog.stop()
        dump = os.environ.get("CLASSROOM_FUZZ_DUMP")
        if dump:  # the server's log and the inputs that got `internal`, for a bug report
            with open(dump, "w", encoding="utf-8") as f:
                f.write("\n".join(self.server.lines) + "\n\n=== internal replies ===\n")
                f.write("\n".join(self.internal_replies))
        problems = []
        if not self.server.alive():
            problems.append("server died:\n" + "\n".join(self.server.lines[-60:]))
        if self.tracebacks():
            problems.append(f"tracebacks in the server's log: {self.tracebacks()[:3]}")
        if self.http_5xx:
            problems.append(f"{self.http_5xx} HTTP 5xx answers")
        if self.internal_replies:
            problems.append(f"'internal' errors: {self.internal_replies[:5]}")
        if res.internal_errors:
            problems.append(f"/metrics counts {res.internal_errors} 'internal' errors")
        if res.failures:
            problems.append(f"watchdog failures: {res.failures[:5]}")
        if not (res.pings and res.lag_samples):
            problems.append("the watchdog measured nothing")
        load = os.getloadavg()
        # The timing limits (issue #14: ping < 100 ms, loop lag < 50 ms) were met when the shared
        # machine was quiet, not when it is busy (docs/reliability.md, "What blocked the event loop"): they are
        # printed and recorded every run, and fail the run only with CLASSROOM_FUZZ_STRICT=1.
        timing = []
        if res.max_rtt_s >= MAX_PING_S:
            slow = [(round(rtt * 1000), self.before(t)) for (t, rtt) in res.slow_pings[:3]]
            timing.append(f"{len(res.slow_pings)} of {res.pings} pings > 100 ms (max {res.max_rtt_s * 1000:.0f} ms; "
                          f"ms, inputs just before): {slow}")
        if res.lag_max_s >= MAX_LOOP_LAG_S:
            timing.append(f"event loop lag {res.lag_max_s * 1000:.1f} ms")
        if timing:
            print(f"FUZZ timing over the limits (load {load}): {'; '.join(timing)[:600]}")
            if os.environ.get("CLASSROOM_FUZZ_STRICT") == "1":
                problems += timing
        assert not problems, f"(load average {load}, ping max {res.max_rtt_s * 1000:.0f} ms, loop lag max " \
                             f"{res.lag_max_s * 1000:.1f} ms) " + "\n".join(problems)
        return res


@dataclass
class Counts:
    inputs: int = 0
    replies: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0


async def read_until_pong(live: Live, ws: aiohttp.ClientWebSocketResponse, ref: int, counts: Counts,
                          frame: object, on_message: Callable[[dict[str, Any]], None] | None = None) -> bool:
    """Read ``ws`` until the ``pong`` of ``ref``: False if the connection closed instead. Every
    reply is counted; an ``internal`` error is recorded against ``frame``."""
    while True:
        try:
            msg = await ws.receive(timeout=10)
        except TimeoutError:
            live.internal_replies.append(f"no pong within 10 s after {str(frame)[:300]!r}")
            return False
        if msg.type != aiohttp.WSMsgType.TEXT:
            return False  # closed (leave, 1009, replaced, join timeout): reopen
        data = json.loads(msg.data)
        kind = data.get("type", "?")
        key = f"error:{data.get('code')}" if kind == "error" else kind
        counts.replies[key] = counts.replies.get(key, 0) + 1
        if kind == "error" and data.get("code") == "internal":
            live.internal_replies.append(f"{data} after {str(frame)[:500]!r}")
        if on_message is not None:
            on_message(data)
        if kind == "pong" and data.get("re") == ref:
            return True


SMALL_STREAM = StreamSpec(width=320, height=240, fps=15, video_bitrate=250_000, seconds=4.0)


async def media_lesson(live: Live, lesson: str) -> tuple[PublisherBot, SubscriberBot]:
    """A lead publishing a small VP8 + Opus stream (a cheap bot, no encoder) and a remote
    classroom receiving it."""
    stream = load_stream(SMALL_STREAM)
    pub = PublisherBot(live.base_url, live.token(lesson, "lead", "lead"), stream)
    await pub.start()
    sub = SubscriberBot(live.base_url, live.token(lesson, "r1", "remote"))
    await sub.start()
    await sub.wait_receiving(packets=20)
    return pub, sub


async def still_flowing(sub: SubscriberBot, packets: int = 30, timeout: float = 10.0) -> None:
    """``sub`` keeps receiving both kinds: ``packets`` more of each within ``timeout``."""
    before = dict(sub.stats.received)
    deadline = time.monotonic() + timeout
    while True:
        now = sub.stats.received
        if all(now.get(k, 0) >= before.get(k, 0) + packets for k in ("video", "audio")):
            return
        assert time.monotonic() < deadline, f"media stopped: {before} -> {now}"
        await asyncio.sleep(0.1)


@contextmanager
def live_server(extra_args: tuple[str, ...] = ()) -> Iterator[Live]:
    # The per-connection publish bucket (limits.publish_burst) is off: the fuzzers send offers as
    # fast as the server answers them, to reach the SDP code, not the limiter (that has its test).
    # the one media port (the server's default; explicit here) is what the datagram and flood fuzzers aim at
    env = {**os.environ, "CLASSROOM_LIMITS_PUBLISH_BURST": "0", "CLASSROOM_MEDIA_UDP_MUX": "true"}
    server = start_server(extra_args=extra_args, log_level="WARNING", env=env)
    try:
        token = server.signer.issue("fuzz-watch", "watch", "remote", "watchdog", lesson_title="watch")
        dog = Watchdog(server.base_url, token)
        dog.start()
        live = Live(server, dog)
        try:
            yield live
        finally:
            dog.stop()
    finally:
        server.stop()


def watch_figures(res: WatchResult) -> dict[str, object]:
    return {"pings": res.pings, "ping_max_ms": round(res.max_rtt_s * 1000, 1),
            "loop_lag_max_ms": round(res.lag_max_s * 1000, 1)}
