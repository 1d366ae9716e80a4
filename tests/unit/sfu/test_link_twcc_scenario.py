"""One subscriber connection over a simulated school line, with transport-cc, on a fake clock.

A simulcast publisher (q 150, h 450, f 1,700 kbit/s, 20 frames a second, keyframes on request)
feeds one DownTrack; every packet the DownTrack sends (media and probe padding) goes through a
tbf-like bottleneck (a rate and a 200-ms queue; a packet that would wait longer is dropped),
and transport-cc feedback comes back every 100 ms with the arrival times, as Chromium sends it.
The Link (estimate, selector, prober) runs on that feedback. This is issue #13's step case,
without a browser: under the new cap within a second, the top layer back within 10 s of the cap
being lifted.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import sfu.downtrack
import sfu.uptrack
from sfu import rtcp
from sfu.downtrack import DownTrack
from sfu.link import Link
from sfu.uptrack import UpTrack
from tests.unit.sfu.test_simulcast import layers
from tests.unit.sfu.test_uptrack import rtp

LAYER_BPS = (150_000.0, 450_000.0, 1_700_000.0)
FPS = 20
TICK = 0.01
FEEDBACK_S = 0.1
ONE_WAY_S = 0.02
QUEUE_S = 0.2  # tbf ... latency 200ms
PAYLOAD = 1100


class Clock:
    """Stands in for the ``time`` module inside sfu.uptrack and sfu.downtrack."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now


@dataclass
class Line:
    rate_bps: float
    loss: float = 0.0  # random loss on the line (after the queue)
    jitter_s: float = 0.0  # up to this much extra one-way delay, at random
    one_way_s: float = ONE_WAY_S
    seed: int = 7
    free_at: float = 0.0
    lost_rtp: list[int] = field(default_factory=list)  # RTP sequence numbers lost (to be NACKed)
    sent: dict[int, tuple[float, int]] = field(default_factory=dict)  # twcc seq -> (sent at, bytes)
    packets: dict[int, tuple[int, int]] = field(default_factory=dict)  # twcc seq -> (ssrc, RTP seq)
    arrivals: dict[int, float | None] = field(default_factory=dict)  # twcc seq -> arrival (None: dropped)
    bytes_log: list[tuple[float, int]] = field(default_factory=list)  # (sent at, bytes) of everything sent

    def __post_init__(self) -> None:
        import random

        self._random = random.Random(self.seed)

    def offer(self, seq: int, now: float, size: int, rtp_seq: int = -1) -> None:
        self.sent[seq] = (now, size)
        self.bytes_log.append((now, size))
        start = max(now, self.free_at)
        if start - now > QUEUE_S:
            self.arrivals[seq] = None  # the queue is full: tail drop
            self.lost_rtp.append(rtp_seq)
            return
        self.free_at = start + size * 8 / self.rate_bps
        if self.loss and self._random.random() < self.loss:
            self.arrivals[seq] = None
            self.lost_rtp.append(rtp_seq)
            return
        self.arrivals[seq] = self.free_at + self.one_way_s + self._random.random() * self.jitter_s

    def twcc_sent(self, seq: int) -> tuple[float, int] | None:
        return self.sent.get(seq)

    def twcc_packet(self, seq: int) -> tuple[int, int] | None:
        return self.packets.get(seq)

    def rate(self, since: float, until: float) -> float:
        return sum(z for t, z in self.bytes_log if since <= t < until) * 8 / (until - since)


class LineTransport:
    """A RawTransport stand-in: numbers nothing itself (the DownTrack's header carries the
    transport-wide number we read back), hands every packet to the line."""

    connected = True

    def __init__(self, line: Line, clock: Clock) -> None:
        self.line, self.clock = line, clock
        self.egress = self
        self._next = 0

    def twcc_take(self, size: int, ssrc: int = 0, rtp_seq: int = 0) -> int:
        seq = self._next & 0xFFFF
        self._next += 1
        self.line.packets[seq] = (ssrc, rtp_seq)
        return seq

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        seq = struct.unpack_from("!H", header, len(header) - 3)[0]  # transport-cc: last element
        padding = bool(header[0] & 0x20)
        self.line.offer(seq, self.clock.now, len(header) + len(payload),
                        -1 if padding else struct.unpack_from("!H", header, 2)[0])
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        return True

    def write_buffer_size(self) -> int:
        return 0


class Publisher:
    """Three layers' packets, frame by frame; a keyframe 100 ms after one is asked for."""

    def __init__(self, group: tuple[UpTrack, ...]) -> None:
        self.group = group
        self.seq = [1000 * (i + 1) for i in range(len(group))]
        self.frame = 0
        self.key_at: list[float | None] = [None] * len(group)

    def tick(self, now: float) -> None:
        if round(now / TICK) % round(1 / FPS / TICK):
            return
        self.frame += 1
        for i, up in enumerate(self.group):
            if up.keyframe_requested_at is not None and self.key_at[i] is None:
                self.key_at[i] = now + 0.1
            key = self.frame == 1 or (self.key_at[i] is not None and now >= self.key_at[i])  # type: ignore[operator]
            if key:
                self.key_at[i] = None
            size = int(LAYER_BPS[i] / FPS / 8 * (3 if key else 1))
            count = max(1, -(-size // PAYLOAD))
            for n in range(count):
                payload = bytes([0x10 if n == 0 else 0x00, 0x00 if key else 0x01]) + b"\x9d\x01\x2a"
                payload += b"v" * (PAYLOAD - len(payload))
                packet = rtp(self.seq[i] & 0xFFFF, 4500 * self.frame, payload, marker=n == count - 1,
                             ssrc=1000 + i)
                self.seq[i] += 1
                up.on_rtp(packet, int(now * 1000))


def feedback(line: Line, reported: int, now: float) -> tuple[rtcp.TransportFeedback | None, int]:
    """What Chromium reports at ``now``: every packet after ``reported`` up to the newest that
    has arrived (those dropped or not there yet before it: not received)."""
    arrived = [s for s, a in line.arrivals.items() if s > reported and a is not None and a <= now]
    if not arrived:
        return None, reported
    newest = max(arrived)
    packets: list[tuple[int, int | None]] = []
    for s in range(reported + 1, newest + 1):
        a = line.arrivals.get(s)
        packets.append((s, None if a is None or a > now else round((a + 5000.0) * 1e6)))
    return rtcp.TransportFeedback(1, 2, reported + 1, 0, packets), newest


@dataclass
class Run:
    clock: Clock
    line: Line
    link: Link
    down: DownTrack
    group: tuple[UpTrack, ...]
    layer_log: list[tuple[float, int]] = field(default_factory=list)  # (time, layer forwarded)


def simulate(run: Run, seconds: float, publisher: Publisher, reported: list[int]) -> Iterator[float]:
    clock = run.clock
    end = clock.now + seconds
    next_fb = clock.now + FEEDBACK_S
    next_rr = clock.now + 1.0
    counted = len(run.line.arrivals)
    while clock.now < end:
        clock.now = round(clock.now + TICK, 6)
        publisher.tick(clock.now)
        if clock.now >= next_fb:
            next_fb += FEEDBACK_S
            fb, reported[0] = feedback(run.line, reported[0], clock.now)
            if fb is not None:
                gone = run.link.on_twcc(fb, run.line, [run.down], clock.now)
                if gone:  # (as Subscriber._repair_lost does)
                    run.down.on_lost([(seq, at) for ssrc, seq, at in gone if ssrc == run.down.ssrc], clock.now)
            lost = [s for s in run.line.lost_rtp if s >= 0]
            run.line.lost_rtp.clear()
            if lost:  # the receiver NACKs what it lost (an RTT later: close enough here)
                run.link.on_nack(run.down.ssrc, lost)
                run.down.on_nack(lost, now=clock.now)
            if clock.now >= next_rr:  # a receiver report: the share lost over the last second
                next_rr += 1.0
                window = list(run.line.arrivals.values())[counted:]
                counted = len(run.line.arrivals)
                if window:
                    run.link.estimator.on_loss(sum(1 for a in window if a is None) / len(window), clock.now)
            run.link.evaluate([run.down], clock.now, int(clock.now * 1000))
            run.layer_log.append((clock.now, run.down.layer_index()))
            yield clock.now


def layers_after(run: Run, start: float) -> list[int]:
    """The layer forwarded at each evaluation after ``start``."""
    return [layer for t, layer in run.layer_log if t > start]


def layer_changes(run: Run, start: float) -> list[tuple[float, int]]:
    """(seconds after ``start``, new layer) of each switch after ``start``."""
    log = run.layer_log
    return [(round(t - start, 1), b) for (t, b), (_, a) in zip(log[1:], log, strict=False) if a != b and t > start]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sfu.uptrack, "time", c)
    monkeypatch.setattr(sfu.downtrack, "time", c)
    return c


async def test_step_down_under_the_cap_within_a_second_and_the_top_layer_back_within_ten(clock: Clock) -> None:
    run, publisher, reported = _run(clock, 8_000_000)
    line, down, link = run.line, run.down, run.link
    for _ in simulate(run, 20.0, publisher, reported):
        pass
    assert down.layer_index() == 2, run.layer_log[-20:]  # 8 Mbit/s: the top layer
    cap = 0.6 * LAYER_BPS[2]
    line.rate_bps = cap
    capped_at = clock.now
    under = None
    for now in simulate(run, 20.0, publisher, reported):
        if under is None and now - capped_at >= 0.5 and line.rate(now - 0.5, now) < cap:
            under = now - capped_at
    assert under is not None and under <= 1.0, under
    assert down.layer_index() == 1
    line.rate_bps = 8_000_000
    lifted_at = clock.now
    back = None
    for now in simulate(run, 20.0, publisher, reported):
        if back is None and down.layer_index() == 2:
            back = now - lifted_at
    print(f"\nunder the cap after {under:.2f} s; top layer back {back} s after the lift")
    assert back is not None and back <= 10.0, (back, link.prober.probes, link.prober.failed)


def _run(clock: Clock, rate_bps: float) -> tuple[Run, Publisher, list[int]]:
    line = Line(rate_bps=rate_bps)
    group = layers()
    transport = LineTransport(line, clock)
    down = DownTrack("s1", "1", "video", 555, 100, 90000, transport)  # type: ignore[arg-type]
    link = Link()
    down.link = link
    down.fwd.twcc_id = 5
    down.attach(group[-1])
    return Run(clock, line, link, down, group), Publisher(group), [-1]


async def test_a_cap_at_60_percent_settles_on_the_middle_layer_and_stays(clock: Clock) -> None:
    run, publisher, reported = _run(clock, 0.6 * LAYER_BPS[2])
    for _ in simulate(run, 10.0, publisher, reported):
        pass
    start = clock.now
    for _ in simulate(run, 50.0, publisher, reported):
        pass
    late = layers_after(run, start)
    assert set(late) == {1}, sorted(set(late))  # h throughout: probes for f fail without a switch
    dropped = sum(1 for s, a in run.line.arrivals.items() if a is None and run.line.sent[s][0] > start)
    assert dropped / max(1, sum(1 for s in run.line.sent if run.line.sent[s][0] > start)) < 0.01


async def test_a_cap_swinging_20_percent_around_the_top_layer_switches_at_most_once_per_10_s(
        clock: Clock) -> None:
    import math

    run, publisher, reported = _run(clock, 8_000_000)
    for _ in simulate(run, 10.0, publisher, reported):
        pass
    start = clock.now
    for now in simulate(run, 60.0, publisher, reported):
        run.line.rate_bps = LAYER_BPS[2] * (1 + 0.2 * math.sin(2 * math.pi * (now - start) / 20))
    changes = layer_changes(run, start)
    assert len(changes) <= 6, changes


async def test_five_percent_random_loss_keeps_the_top_layer(clock: Clock) -> None:
    run, publisher, reported = _run(clock, 8_000_000)
    run.line.loss = 0.05
    for _ in simulate(run, 10.0, publisher, reported):
        pass
    start = clock.now
    for _ in simulate(run, 40.0, publisher, reported):
        pass
    late = layers_after(run, start)
    assert late.count(2) / len(late) > 0.95, sorted(set(late))


async def test_a_long_jittery_lossy_capped_line_gets_the_layer_it_can_carry(clock: Clock) -> None:
    # rtt100_loss3_cap3: 45 ms + U(0, 10) ms each way, 3 % loss, 3 Mbit/s
    run, publisher, reported = _run(clock, 3_000_000)
    run.line.loss, run.line.jitter_s, run.line.one_way_s = 0.03, 0.01, 0.045
    for _ in simulate(run, 10.0, publisher, reported):
        pass
    start = clock.now
    for _ in simulate(run, 40.0, publisher, reported):
        pass
    late = layers_after(run, start)
    changes = layer_changes(run, start)
    # 3 Mbit/s carries f (1.7 Mbit/s): reached (random loss is not a queue) and kept
    assert late[-300:].count(2) == 300 and len(changes) <= 2, changes


async def test_a_cap_at_30_percent_settles_on_a_lower_layer_without_overflowing(clock: Clock) -> None:
    run, publisher, reported = _run(clock, 0.3 * LAYER_BPS[2])
    for _ in simulate(run, 15.0, publisher, reported):  # (h at first, then q: h and its keyframes overflow)
        pass
    start = clock.now
    for _ in simulate(run, 50.0, publisher, reported):
        pass
    late = layers_after(run, start)
    changes = layer_changes(run, start)
    assert len(set(late)) == 1 and late[0] >= 0, changes
    sent = [s for s in run.line.sent if run.line.sent[s][0] > start]
    dropped = sum(1 for s in sent if run.line.arrivals[s] is None)
    assert dropped / max(1, len(sent)) < 0.01
