"""A paced DownTrack: the UpTrack's packets queue in the connection's PacedSender and reach the
transport over time, in order (fakes, a real event loop)."""

from __future__ import annotations

import asyncio
import time

from sfu.bwe.pacer import PacerConfig
from sfu.paced import PacedSender
from tests.unit.sfu.test_uptrack import down, header, loop, make, rtp, vp8_payload  # noqa: F401 (fixture)


async def test_a_paced_keyframe_reaches_the_transport_over_time() -> None:
    up, _ = make()
    d, t = down(up)
    sender = PacedSender(t, PacerConfig(factor=1.0, burst_ms=5, max_queue_ms=10_000))  # type: ignore[arg-type]
    sender.set_estimate(800_000)  # 100 kB/s
    d.pace(sender)
    start = time.monotonic()
    for i in range(20):  # ~22 kB at once: ~0.2 s paced
        up.on_rtp(rtp(100 + i, 90000, vp8_payload(i == 0) + b"x" * 1000, marker=i == 19), 0)
    assert 0 < len(t.rtp) < 20
    while len(t.rtp) < 20 and time.monotonic() - start < 2:
        await asyncio.sleep(0.01)
    assert len(t.rtp) == 20
    assert time.monotonic() - start > 0.15
    seqs = [header(p)[2] for p in t.rtp]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(20)]


async def test_unpacing_sends_what_is_queued_at_once() -> None:
    up, _ = make()
    d, t = down(up)
    sender = PacedSender(t, PacerConfig(factor=1.0, burst_ms=1))  # type: ignore[arg-type]
    sender.set_estimate(200_000)
    d.pace(sender)
    for i in range(10):
        up.on_rtp(rtp(100 + i, 90000, vp8_payload(i == 0) + b"x" * 1000), 0)
    assert len(t.rtp) < 10
    d.pace(None)
    sender.stop()
    assert len(t.rtp) == 10
    up.on_rtp(rtp(110, 93000, vp8_payload(False)), 33)
    assert len(t.rtp) == 11  # straight through again
    sender.close()


async def test_abs_send_time_is_stamped_when_the_packet_leaves_the_pacer() -> None:
    up, _ = make()
    d, t = down(up)
    d.fwd.abs_send_time_id = 3
    sender = PacedSender(t, PacerConfig(factor=1.0, burst_ms=1, max_queue_ms=10_000))  # type: ignore[arg-type]
    sender.set_estimate(200_000)  # 25 kB/s: 10 packets of ~1.1 kB take ~0.4 s
    d.pace(sender)
    for i in range(10):
        up.on_rtp(rtp(100 + i, 90000, vp8_payload(i == 0) + b"x" * 1000), 0)
    while len(t.rtp) < 10:
        await asyncio.sleep(0.01)
    stamps = [int.from_bytes(p[17:20], "big") for p in t.rtp]
    spread_ms = ((stamps[-1] - stamps[0]) & 0xFFFFFF) * 1000 / (1 << 18)
    assert spread_ms > 200, stamps  # not all the arrival time the fan-out stamped
    assert all(p[12:14] == b"\xbe\xde" and p[16] == (3 << 4) | 2 for p in t.rtp)
    sender.close()
