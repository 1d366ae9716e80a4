"""``python -m loadtest.soak --minutes M``: a bounded soak of ``classroom serve`` on loopback.

For M minutes, lessons start and end; in each, a lead bot publishes a small VP8 + Opus stream
(:class:`loadtest.bots.PublisherBot`: no encoder) and remote classroom bots
(:class:`loadtest.bots.SubscriberBot`: no decoder) join, leave, reconnect and raise and lower
their hands at random while the lead grants and revokes the floor. A sampler reads the server's
RSS and open fds (``/proc/PID``), its asyncio task count and live lessons (``/healthz``) every
few seconds.

Baseline: after a warm-up (lessons at the soak's concurrency for a tenth of the soak's length,
at least 20 s and at most 3 minutes, ended, so lazily made pools, caches and the allocator's arenas
exist), with nobody connected. ``--warmup S`` sets it. End: after the soak, once everybody has left. It passes if RSS
grew by at most 10 % and fds, tasks and live lessons are back to the baseline. Prints a table and
one JSON line (also written to ``--json PATH``); exits 0 if it passed, 1 if not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from loadtest.bots import BotError, PublisherBot, SubscriberBot
from loadtest.media import Stream, StreamSpec, load_stream
from loadtest.serverproc import ServerProcess, start_server

SMALL = StreamSpec(width=320, height=240, fps=15, video_bitrate=250_000, seconds=4.0)
RSS_GROWTH_LIMIT = 0.10


@dataclass
class Sample:
    t_s: float
    rss_kib: int
    fds: int
    tasks: int
    lessons: int
    classrooms: int


@dataclass
class SoakResult:
    minutes: float
    baseline: Sample
    end: Sample
    peak_rss_kib: int
    samples: int
    lessons_run: int
    joins: int
    reconnects: int
    hands: int
    bot_errors: int
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


def sample(server: ServerProcess, t0: float) -> Sample:
    rss = 0
    with open(f"/proc/{server.pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{server.pid}/fd"))
    with urllib.request.urlopen(server.base_url + "/healthz", timeout=10) as r:
        health = json.loads(r.read())
    classrooms = sum(int(v) for v in health.get("classrooms", {}).values())
    return Sample(round(time.monotonic() - t0, 1), rss, fds, int(health.get("tasks", -1)),
                  int(health.get("lessons", -1)), classrooms)


class Lesson:
    """One lesson's bots: a lead publishing and remote classrooms coming and going."""

    def __init__(self, soak: Soak, lesson_id: str, remotes: int) -> None:
        self.soak, self.id, self.remotes = soak, lesson_id, remotes
        self.lead: PublisherBot | None = None
        self.subs: dict[str, SubscriberBot] = {}

    def token(self, classroom: str, role: str) -> str:
        return self.soak.server.signer.issue(self.id, classroom, role, classroom, lesson_title="soak")

    async def start(self) -> None:
        self.lead = PublisherBot(self.soak.server.base_url, self.token("lead", "lead"), self.soak.stream)
        await self.lead.start()
        for i in range(self.remotes):
            await self.join(f"r{i}")

    async def join(self, classroom: str) -> None:
        bot = SubscriberBot(self.soak.server.base_url, self.token(classroom, "remote"), sample_every=50)
        self.subs[classroom] = bot
        await bot.start()
        self.soak.joins += 1

    async def leave(self, classroom: str) -> None:
        bot = self.subs.pop(classroom, None)
        if bot is not None:
            await bot.stop()

    async def step(self, rng: random.Random) -> None:
        """One random action."""
        op = rng.randrange(6)
        classroom = f"r{rng.randrange(self.remotes)}"
        bot = self.subs.get(classroom)
        if op == 0:  # leaves (or comes back)
            if bot is not None:
                await self.leave(classroom)
            else:
                await self.join(classroom)
        elif op == 1 and bot is not None:  # drops and reconnects with the same token
            await self.leave(classroom)
            await self.join(classroom)
            self.soak.reconnects += 1
        elif op in (2, 3) and bot is not None:
            await bot.signaling.send({"type": "raise_hand" if op == 2 else "lower_hand"})
            self.soak.hands += 1
        elif op == 4 and self.lead is not None:
            kind = rng.choice(["grant_floor", "revoke_floor", "spotlight", "mute", "unmute"])
            await self.lead.signaling.send({"type": kind, "classroom_id": classroom})
        elif classroom not in self.subs:
            await self.join(classroom)

    async def stop(self) -> None:
        for classroom in list(self.subs):
            await self.leave(classroom)
        if self.lead is not None:
            self.soak.bot_errors += len(self.lead.signaling.errors)
            await self.lead.stop()
            self.lead = None


class Soak:
    def __init__(self, server: ServerProcess, stream: Stream, seed: int) -> None:
        self.server, self.stream = server, stream
        self.rng = random.Random(seed)
        self.joins = self.reconnects = self.hands = self.bot_errors = self.lessons_run = 0
        self._n = 0

    async def run_lesson(self, until: float, remotes: int, length_s: tuple[float, float]) -> None:
        """Lessons one after another in one slot until ``until``."""
        while time.monotonic() < until:
            self._n += 1
            lesson = Lesson(self, f"soak-{self._n}", remotes)
            end = min(until, time.monotonic() + self.rng.uniform(*length_s))
            try:
                await lesson.start()
                self.lessons_run += 1
                while time.monotonic() < end:
                    await asyncio.sleep(self.rng.uniform(0.3, 1.5))
                    await lesson.step(self.rng)
            except (BotError, TimeoutError, OSError) as exc:
                self.bot_errors += 1
                print(f"soak: lesson {lesson.id}: {exc}", file=sys.stderr)
            finally:
                await lesson.stop()


async def quiet(server: ServerProcess, t0: float, timeout_s: float = 30.0, back_to: Sample | None = None) -> Sample:
    """Wait until nobody is connected and the task count stops falling; the sample then. With
    ``back_to`` (the baseline), wait instead until fds and tasks are back to it (or the timeout):
    a lesson's recorder and its connections take a few seconds to finish after the last
    classroom left, which is not a leak; what is still there after ``timeout_s`` is."""
    deadline = time.monotonic() + timeout_s
    last = sample(server, t0)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = sample(server, t0)
        if now.lessons == 0 and now.classrooms == 0:
            if back_to is not None:
                if now.fds <= back_to.fds and now.tasks <= back_to.tasks:
                    return now
            elif now.tasks >= last.tasks and now.fds >= last.fds:
                return now
        last = now
    return last


def warmup_for(minutes: float) -> float:
    """The warm-up before the baseline: a tenth of the soak, 20 s to 3 minutes. A 30-minute soak
    measured against a 20-s baseline counted the allocator filling its arenas as growth (its RSS
    was flat over the last 6 minutes)."""
    return min(180.0, max(20.0, minutes * 6.0))


async def soak(minutes: float, lessons: int = 2, remotes: int = 3, seed: int = 14,
               server: ServerProcess | None = None, sample_every_s: float = 5.0,
               warmup_s: float | None = None) -> SoakResult:
    own = server is None
    srv = server or start_server(log_level="WARNING")
    t0 = time.monotonic()
    samples: list[Sample] = []
    try:
        stream = load_stream(SMALL)
        s = Soak(srv, stream, seed)
        # warm-up: the soak's own concurrency for a while (whole lessons), then everybody gone
        warm = time.monotonic() + (warmup_s if warmup_s is not None else warmup_for(minutes))
        await asyncio.gather(*(s.run_lesson(warm, remotes, (10, 20)) for _ in range(lessons)))
        baseline = await quiet(srv, t0)
        samples.append(baseline)
        print(f"soak: baseline after warm-up: {figures(baseline)}", file=sys.stderr, flush=True)
        until = time.monotonic() + minutes * 60

        async def sampler() -> None:
            last_print = time.monotonic()
            while True:
                await asyncio.sleep(sample_every_s)
                samples.append(sample(srv, t0))
                if time.monotonic() - last_print >= 60:  # a long soak shows its trend as it goes
                    last_print = time.monotonic()
                    print(f"soak: {samples[-1].t_s:.0f} s: {figures(samples[-1], baseline)}", file=sys.stderr,
                          flush=True)

        task = asyncio.get_running_loop().create_task(sampler())
        try:
            await asyncio.gather(*(s.run_lesson(until, remotes, (20, 60)) for _ in range(lessons)))
        finally:
            task.cancel()
        end = await quiet(srv, t0, back_to=baseline)
        samples.append(end)
        result = SoakResult(
            minutes=minutes, baseline=baseline, end=end, peak_rss_kib=max(x.rss_kib for x in samples),
            samples=len(samples), lessons_run=s.lessons_run, joins=s.joins, reconnects=s.reconnects,
            hands=s.hands, bot_errors=s.bot_errors,
        )
        result.checks = {
            "rss_growth_le_10pct": end.rss_kib <= baseline.rss_kib * (1 + RSS_GROWTH_LIMIT),
            "fds_back_to_baseline": end.fds <= baseline.fds,
            "tasks_back_to_baseline": end.tasks <= baseline.tasks,
            "no_lesson_left": end.lessons == 0 and end.classrooms == 0,
            "server_alive": srv.alive(),
        }
        return result
    finally:
        if own:
            srv.stop()


def figures(x: Sample, baseline: Sample | None = None) -> str:
    growth = f" ({100 * (x.rss_kib - baseline.rss_kib) / max(1, baseline.rss_kib):+.1f} %)" if baseline else ""
    return (f"RSS {x.rss_kib} KiB{growth}, {x.fds} fds, {x.tasks} asyncio tasks, {x.lessons} lessons, "
            f"{x.classrooms} classrooms")


def table(r: SoakResult) -> str:
    rows = [("RSS (KiB)", r.baseline.rss_kib, r.end.rss_kib), ("open fds", r.baseline.fds, r.end.fds),
            ("asyncio tasks", r.baseline.tasks, r.end.tasks), ("live lessons", r.baseline.lessons, r.end.lessons),
            ("classrooms", r.baseline.classrooms, r.end.classrooms)]
    out = [f"{'':<14} {'baseline':>10} {'end':>10}"]
    out += [f"{name:<14} {a:>10} {b:>10}" for name, a, b in rows]
    growth = 100 * (r.end.rss_kib - r.baseline.rss_kib) / max(1, r.baseline.rss_kib)
    out.append(f"RSS growth {growth:+.1f} % (peak {r.peak_rss_kib} KiB); {r.lessons_run} lessons, {r.joins} joins, "
               f"{r.reconnects} reconnects, {r.hands} hand raises/lowers, {r.bot_errors} refusals/bot errors")
    out.append("checks: " + ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in r.checks.items()))
    out.append(f"soak {'PASSED' if r.passed else 'FAILED'} (RSS growth <= {RSS_GROWTH_LIMIT:.0%} after warm-up; "
               "fds, asyncio tasks and lessons back to baseline)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="how long the soak runs (after warm-up)")
    parser.add_argument("--lessons", type=int, default=2, help="lessons at once (default 2)")
    parser.add_argument("--remotes", type=int, default=3, help="remote classrooms per lesson (default 3)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--warmup", type=float, metavar="S",
                        help="seconds of warm-up before the baseline (default: a tenth of the soak, 20-180)")
    parser.add_argument("--json", metavar="PATH", help="also write the result here")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    if args.warmup is not None and not 0 <= args.warmup <= 3600:
        parser.error("--warmup must be in [0, 3600] seconds")
    result = asyncio.run(soak(args.minutes, args.lessons, args.remotes, args.seed, warmup_s=args.warmup))
    data: dict[str, Any] = {**asdict(result), "passed": result.passed}
    print(table(result))
    print(json.dumps(data))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
