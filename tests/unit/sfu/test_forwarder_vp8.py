"""Forwarder.advance_vp8: picture id / TL0PICIDX continuity and temporal layers (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.forwarder import Forwarder
from sfu.vp8 import ALL_TIDS

PATTERN = (0, 2, 1, 2)  # L1T3: the TID of frames 0, 1, 2, 3, then again


@dataclass
class Sent:
    seq: int
    pid: int
    tl0: int
    tid: int
    in_seq: int
    in_pid: int


class Source:
    """One simulcast layer's packets: ``per_frame`` packets a frame, L1T3 TIDs."""

    def __init__(self, seq: int, pid: int, tl0: int, per_frame: int = 2) -> None:
        self.seq, self.pid, self.tl0, self.per_frame = seq, pid, tl0, per_frame
        self.frame = 0
        self.ts = 1000

    def frame_packets(self) -> list[tuple[int, int, int, int, int, bool]]:
        """(seq, ts, pid, tl0, tid, keyframe) of the next frame's packets."""
        tid = PATTERN[self.frame % 4]
        if tid == 0 and self.frame:
            self.tl0 = (self.tl0 + 1) & 0xFF
        out = []
        for i in range(self.per_frame):
            out.append((self.seq, self.ts, self.pid, self.tl0, tid, self.frame == 0 and i == 0))
            self.seq = (self.seq + 1) & 0xFFFF
        self.pid = (self.pid + 1) & 0x7FFF
        self.ts += 3000
        self.frame += 1
        return out


def run(f: Forwarder, src: Source, frames: int, ms: list[int], sent: list[Sent], key_first: bool = False) -> None:
    for n in range(frames):
        for seq, ts, pid, tl0, tid, key in src.frame_packets():
            ms[0] += 5
            if f.advance_vp8(seq, ts, ms[0], key or (key_first and n == 0), pid, 0x7FFF, tl0, tid):
                sent.append(Sent(f.out_seq, f.out_pid, f.out_tl0, tid, seq, pid))


def fwd() -> Forwarder:
    return Forwarder(90000, True, initial_seq=100, initial_ts=0)


def contiguous(values: list[int], mask: int) -> bool:
    return all((b - a) & mask == 1 for a, b in zip(values, values[1:], strict=False))


def test_picture_ids_and_tl0_continue_across_a_layer_switch() -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    a, b = Source(5000, 100, 50), Source(30000, 9000, 200)
    f.switch(a)
    run(f, a, 6, ms, sent)
    f.switch(b)
    b.frame = 0
    run(f, b, 6, ms, sent)
    pids = [s.pid for s in sent[::2]]
    assert contiguous(pids, 0x7FFF) and len(pids) == 12
    tl0s = sorted({s.tl0 for s in sent})
    assert tl0s == list(range(tl0s[0], tl0s[0] + len(tl0s)))  # no jump at the switch
    assert contiguous([s.seq for s in sent], 0xFFFF)


def test_dropping_the_top_temporal_layer_closes_up_numbers_and_picture_ids() -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    src = Source(65500, 32760, 255)  # both wrap on the way
    f.switch(src)
    f.set_temporal(1)
    run(f, src, 40, ms, sent)
    assert {s.tid for s in sent} == {0, 1}
    assert len(sent) == 40  # half the frames, two packets each
    assert contiguous([s.seq for s in sent], 0xFFFF)
    assert contiguous([s.pid for s in sent[::2]], 0x7FFF)
    assert f.dropped_temporal == 40


def test_only_the_base_layer() -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    src = Source(10, 10, 0)
    f.switch(src)
    f.set_temporal(0)
    run(f, src, 16, ms, sent)
    assert {s.tid for s in sent} == {0} and len(sent) == 8
    assert contiguous([s.pid for s in sent[::2]], 0x7FFF) and contiguous([s.tl0 for s in sent[::2]], 0xFF)


def test_going_up_waits_for_a_tl0_frame_going_down_does_not() -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    src = Source(10, 10, 0)
    f.switch(src)
    f.set_temporal(0)
    run(f, src, 5, ms, sent)  # frames 0..4: TIDs 0 2 1 2 0
    f.set_temporal(ALL_TIDS)
    run(f, src, 1, ms, sent)  # frame 5, TID 2: not yet (it may refer to frame 2, never sent)
    assert sent[-1].tid == 0 and f.max_tid == 0
    run(f, src, 3, ms, sent)  # frames 6 (TID 1), 7 (TID 2), 8 (TID 0): up at frame 8
    assert [s.tid for s in sent[-2:]] == [0, 0] and f.max_tid == ALL_TIDS
    run(f, src, 3, ms, sent)  # 9, 10, 11: TIDs 2 1 2 all sent
    assert [s.tid for s in sent[-6:]] == [2, 2, 1, 1, 2, 2]
    f.set_temporal(0)
    run(f, src, 1, ms, sent)  # frame 12, TID 0: sent; the next TID 2 frame is not
    run(f, src, 1, ms, sent)
    assert sent[-1].tid == 0 and f.max_tid == 0
    assert contiguous([s.pid for s in sent[::2]], 0x7FFF) and contiguous([s.seq for s in sent], 0xFFFF)


def test_a_retransmission_maps_back_with_the_picture_id_it_had() -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    src = Source(1000, 500, 3)
    f.switch(src)
    run(f, src, 8, ms, sent)
    f.set_temporal(1)
    run(f, src, 30, ms, sent)
    for s in sent[-70:]:
        found = f.incoming(s.seq)
        assert found is not None
        in_seq, pid_offset, _ = found
        assert in_seq == s.in_seq and (s.in_pid + pid_offset) & 0x7FFF == s.pid


def test_a_lost_dropped_packet_leaves_no_gap_when_the_next_arrives() -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    src = Source(1000, 500, 3, per_frame=1)
    f.switch(src)
    f.set_temporal(1)
    run(f, src, 2, ms, sent)  # TID 0 sent, TID 2 dropped
    src.frame_packets()  # frame 2 (TID 1) lost upstream
    run(f, src, 3, ms, sent)  # 3 (TID 2, dropped), 4 (TID 0), 5 (TID 2)
    seqs = [s.seq for s in sent]
    assert len(seqs) == 2 and (seqs[1] - seqs[0]) & 0xFFFF == 2  # the hole of the lost TID 1 frame stays


def test_late_packets_older_than_a_drop_are_not_sent() -> None:
    f = fwd()
    f.switch("a")
    assert f.advance_vp8(10, 0, 0, True, 1, 0x7FFF, 0, 0)
    assert f.advance_vp8(12, 3000, 5, False, 2, 0x7FFF, 0, 2)  # every TID: sent (11 is late)
    f.set_temporal(1)
    assert not f.advance_vp8(13, 6000, 10, False, 3, 0x7FFF, 0, 2)  # dropped
    assert not f.advance_vp8(11, 0, 12, False, 1, 0x7FFF, 0, 0)  # older than the drop


@settings(max_examples=80, deadline=None)
@given(targets=st.lists(st.sampled_from([0, 1, ALL_TIDS]), min_size=1, max_size=12),
       lengths=st.lists(st.integers(1, 6), min_size=12, max_size=12))
def test_any_target_changes_keep_the_output_continuous(targets: list[int], lengths: list[int]) -> None:
    f, ms, sent = fwd(), [0], list[Sent]()
    src = Source(65000, 32700, 250, per_frame=2)
    f.switch(src)
    for target, frames in zip(targets, lengths, strict=False):
        f.set_temporal(target)
        run(f, src, frames, ms, sent)
    assert contiguous([s.seq for s in sent], 0xFFFF)
    assert contiguous([s.pid for s in sent[::2]], 0x7FFF)
    # a frame above TID 0 is only sent if the TL0 frame it follows was sent: the receiver can decode it
    for a, b in zip(sent[::2], sent[2::2], strict=False):
        if b.tid > 0:
            assert b.tl0 == a.tl0
