from __future__ import annotations

from recorder.depacketize import RtpPacket
from recorder.jitter import JitterBuffer


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(96, seq & 0xFFFF, seq * 10, 1, False, b"x")


def seqs(items: list) -> list:
    return [i.sequence if isinstance(i, RtpPacket) else ("gap", i.lost) for i in items]


def test_in_order_passes_through_across_wraparound() -> None:
    jb = JitterBuffer(max_wait=0.1)
    out = []
    for s in range(65530, 65540):
        out += jb.push(pkt(s), 0.0)
    assert seqs(out) == [s & 0xFFFF for s in range(65530, 65540)]


def test_reordering_is_fixed() -> None:
    jb = JitterBuffer(max_wait=0.1)
    out = []
    for s in (1, 3, 2, 5, 4):
        out += jb.push(pkt(s), 0.0)
    assert seqs(out) == [1, 2, 3, 4, 5]
    assert jb.stats.reordered == 2


def test_loss_reported_after_max_wait() -> None:
    jb = JitterBuffer(max_wait=0.1)
    out = jb.push(pkt(1), 0.0) + jb.push(pkt(3), 0.01) + jb.push(pkt(4), 0.02)
    assert seqs(out) == [1]
    assert jb.poll(0.05) == []
    assert seqs(jb.poll(0.2)) == [("gap", 1), 3, 4]
    assert jb.stats.lost == 1


def test_capacity_bounds_waiting() -> None:
    jb = JitterBuffer(max_wait=10, capacity=3)
    out = jb.push(pkt(1), 0)
    for s in range(3, 8):
        out += jb.push(pkt(s), 0)
    assert ("gap", 1) in seqs(out)


def test_late_and_duplicate_are_dropped() -> None:
    jb = JitterBuffer(max_wait=0.1)
    jb.push(pkt(1), 0)
    jb.push(pkt(3), 0)
    jb.poll(1.0)  # gives up on 2
    assert jb.push(pkt(2), 1.1) == []
    assert jb.push(pkt(3), 1.1) == []
    assert jb.stats.late == 2


def test_restart_far_away() -> None:
    jb = JitterBuffer()
    jb.push(pkt(100), 0)
    out = jb.push(pkt(40000), 0.1) + jb.push(pkt(40001), 0.1)
    assert seqs(out) == [("gap", 0), 40000, 40001]
    assert jb.stats.restarts == 1


def test_missing_reports_each_hole_once_for_nack() -> None:
    jb = JitterBuffer(max_wait=0.1)
    jb.push(pkt(10), 0)
    jb.push(pkt(13), 0)
    assert jb.missing() == [11, 12]
    assert jb.missing() == []
    jb.push(pkt(16), 0)
    assert jb.missing() == [14, 15]
    jb.push(pkt(11), 0)  # a retransmission fills the hole
    jb.push(pkt(12), 0)
    assert jb.pending == 1 and jb.missing() == []  # 16 waits for 14, 15 (asked already)
