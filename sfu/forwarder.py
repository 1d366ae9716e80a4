"""Pure per-subscriber translation: sequence/timestamp rewrite, source switching, keyframe gating.

No I/O, no asyncio: a ``Forwarder`` takes the header fields of an incoming packet and says
which sequence number and timestamp the subscriber should see, or that the packet must be
dropped. The subscriber's stream stays continuous across pauses and switches between sources
(e.g. the spotlight moving from one remote classroom to another on the same m-line): the
sequence number goes on from the last one sent, and the timestamp advances by the wall-clock
time that passed, so the receiver's jitter buffer never sees a jump backwards.
"""

from __future__ import annotations

import random
from collections import deque

from sfu.lane import Lane
from sfu.vp8 import ALL_TIDS

SEQ_MASK = 0xFFFF
TS_MASK = 0xFFFFFFFF
# A packet this many sequence numbers behind the newest is dropped: libsrtp refuses to protect an
# index older than its 128-packet replay window, and the receiver has long given up on it.
MAX_REORDER = 100
# How many offset changes (padding insertions, dropped temporal-layer packets) a NACK can still
# be mapped back across.
MAX_SEGMENTS = 64
PID_MASK = 0x7FFF  # picture ids: 15 bits (a 7-bit id uses the low 7 of the same arithmetic)


class Forwarder(Lane):
    """The rewrite state lives in :class:`~sfu.lane.Lane` (C or Python), where the C fan-out
    loop reads and writes it too; all of the logic is here."""

    # Python-only state (the C loop never needs it): the offset history for NACKs, and the
    # output sequence numbers that carried padding (nothing to retransmit for those).
    __slots__ = ("_segments", "_padding")

    source: object
    clock_rate: int
    is_video: bool
    started: bool
    paused: bool
    seq_offset: int
    ts_offset: int
    first_in_seq: int
    highest_in_seq: int
    ext_first: int
    ext_highest: int
    last_out_seq: int
    last_out_ts: int
    last_out_ms: int  # arrival time of the last packet sent; -1 before the first
    dropped_waiting: int
    out_seq: int
    out_ts: int
    # VP8 (sfu/vp8.py): picture id / TL0PICIDX continuity and temporal layers
    vp8: bool
    pid_offset: int
    tl0_offset: int
    last_in_pid: int  # picture id of the newest packet seen (-1: none)
    last_out_pid: int  # the subscriber's picture id of the newest packet sent (-1: none)
    last_out_tl0: int
    drop_pid: int  # incoming picture id of the last dropped picture (counted once)
    max_tid: int  # temporal layers forwarded now: TID <= max_tid
    target_tid: int  # ... and wanted (taken at the next frame that may start it)
    out_pid: int
    out_tl0: int
    dropped_temporal: int

    def __init__(
        self,
        clock_rate: int,
        is_video: bool,
        initial_seq: int | None = None,
        initial_ts: int | None = None,
    ) -> None:
        super().__init__()
        self.clock_rate = clock_rate
        self.is_video = is_video
        self.source = None
        self.started = False
        self.seq_offset = 0
        self.ts_offset = 0
        self.first_in_seq = 0
        self.highest_in_seq = 0
        # Extended (unwrapped) sequence numbers of the segment's first and highest packets.
        self.ext_first = 0
        self.ext_highest = 0
        # The "previous" packet sent, so the first real one continues from it.
        seq0 = random.randrange(0, 0x8000) if initial_seq is None else initial_seq
        self.last_out_seq = (seq0 - 1) & SEQ_MASK
        self.last_out_ts = random.randrange(0, 1 << 31) if initial_ts is None else initial_ts
        self.last_out_ms = -1
        self.paused = False
        self.dropped_waiting = 0
        # the result of the last successful advance()
        self.out_seq = 0
        self.out_ts = 0
        self.vp8 = False
        self.pid_offset = self.tl0_offset = 0
        self.last_in_pid = self.last_out_pid = self.last_out_tl0 = self.drop_pid = -1
        self.max_tid = self.target_tid = ALL_TIDS
        self.out_pid = self.out_tl0 = 0
        self.dropped_temporal = 0
        # (extended incoming index of the first packet using it, seq_offset, pid_offset,
        # tl0_offset), oldest first
        self._segments: list[tuple[int, int, int, int]] = []
        self._padding: deque[int] = deque(maxlen=256)

    @property
    def waiting_keyframe(self) -> bool:
        """A video forwarder that has not started its current source waits for a keyframe."""
        return self.is_video and not self.started and not self.paused

    def switch(self, source: object) -> None:
        """Forward from ``source`` from now on (re-based at its next packet / keyframe)."""
        self.source = source
        self.started = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Start again after a pause; offsets are re-based so the stream has no gap."""
        if self.paused:
            self.paused = False
            self.started = False

    def translate(self, seq: int, ts: int, arrival_ms: int, keyframe: bool) -> tuple[int, int] | None:
        """Map an incoming packet to (out_seq, out_ts), or None to drop it."""
        if self.advance(seq, ts, arrival_ms, keyframe):
            return self.out_seq, self.out_ts
        return None

    def advance(self, seq: int, ts: int, arrival_ms: int, keyframe: bool) -> bool:
        """:meth:`translate` for the hot path: True and the result in ``out_seq``/``out_ts``,
        or False to drop. It allocates nothing, so the fan-out loop creates no objects for the
        garbage collector (whose full collections would show up as latency spikes)."""
        if self.paused:
            return False
        if not self.started:
            if self.is_video and not keyframe:
                self.dropped_waiting += 1
                return False
            self._rebase(seq, ts, arrival_ms)
        # From here on sfu/_fanout.c does the same for lanes in the steady state: keep them equal
        # (tests/unit/sfu/test_fanout.py runs both on the same packets).
        # Where this packet lies relative to the newest one, as a signed 16-bit distance.
        delta = ((seq - self.highest_in_seq + 0x8000) & SEQ_MASK) - 0x8000
        if delta <= 0 and (self.ext_highest + delta < self.ext_first or delta < -MAX_REORDER):
            # older than where this source started for us (or than the last padding probe, which
            # took the next number), or than SRTP's replay window
            return False
        out_seq = self.out_seq = (seq + self.seq_offset) & SEQ_MASK
        out_ts = self.out_ts = (ts + self.ts_offset) & TS_MASK
        if delta > 0:
            self.ext_highest += delta
            self.highest_in_seq = seq
            self.last_out_seq = out_seq
            self.last_out_ts = out_ts
            self.last_out_ms = arrival_ms
        return True

    def advance_vp8(
        self, seq: int, ts: int, arrival_ms: int, keyframe: bool, pid: int, pid_mask: int, tl0: int, tid: int
    ) -> bool:
        """:meth:`advance` for a VP8 lane, with the descriptor's picture id (-1: none; ``pid_mask``
        0x7F or 0x7FFF), TL0PICIDX (-1: none) and TID (-1: none). On True, ``out_pid`` and
        ``out_tl0`` hold the subscriber's values. Frames above the temporal target are dropped
        and the subscriber's sequence numbers and picture ids close up behind them."""
        if self.paused:
            return False
        rebased = False
        if not self.started:
            if not keyframe:
                self.dropped_waiting += 1
                return False
            self._rebase(seq, ts, arrival_ms)
            self._rebase_vp8(pid, tl0)
            rebased = True
        delta = ((seq - self.highest_in_seq + 0x8000) & SEQ_MASK) - 0x8000
        newest = rebased or delta > 0
        if tid >= 0:
            if newest and pid != self.last_in_pid:  # the first packet of a new frame
                target = self.target_tid
                # down at any frame; up only at a TL0 frame (the frames above it refer to it)
                if target < self.max_tid or (target > self.max_tid and tid == 0):
                    self.max_tid = target
            if tid > self.max_tid:
                if delta > 0:
                    self._drop_newest(seq, delta, pid)
                self.dropped_temporal += 1
                return False
        # C does the rest for lanes in the steady state (sfu/_fanout.c: the vp8 branch)
        if not self.advance(seq, ts, arrival_ms, keyframe):
            return False
        if pid >= 0:
            self.out_pid = (pid + self.pid_offset) & pid_mask
        if tl0 >= 0:
            self.out_tl0 = (tl0 + self.tl0_offset) & 0xFF
        if newest:
            self.last_in_pid = pid
            if pid >= 0:
                self.last_out_pid = self.out_pid
            if tl0 >= 0:
                self.last_out_tl0 = self.out_tl0
        return True

    def set_temporal(self, tid: int) -> None:
        """Forward temporal layers up to ``tid`` (``ALL_TIDS``: all); a lower target takes effect
        at the next frame, a higher one at the next TL0 frame, neither needs a keyframe."""
        self.target_tid = max(0, min(tid, ALL_TIDS))

    def _drop_newest(self, seq: int, delta: int, pid: int) -> None:
        # the newest packet is not sent: the numbers after it move down by one (and the picture
        # ids by one per dropped picture), older stragglers are dropped from now on, and NACKs
        # still map back across the change
        self.ext_highest += delta
        self.highest_in_seq = seq
        self.seq_offset = (self.seq_offset - 1) & SEQ_MASK
        if pid >= 0 and pid != self.drop_pid:
            self.pid_offset = (self.pid_offset - 1) & PID_MASK
            self.drop_pid = pid
        self.last_in_pid = pid
        self.ext_first = self.ext_highest + 1
        segment = (self.ext_highest + 1, self.seq_offset, self.pid_offset, self.tl0_offset)
        if self._segments and self._segments[-1][0] == self.ext_highest:
            self._segments[-1] = segment  # the packet before was dropped too: one segment
        else:
            self._segments.append(segment)
            if len(self._segments) > MAX_SEGMENTS:
                del self._segments[0]

    def _rebase_vp8(self, pid: int, tl0: int) -> None:
        # the subscriber's picture ids and TL0PICIDX go on from the last ones it got
        self.pid_offset = (self.last_out_pid + 1 - pid) & PID_MASK if pid >= 0 and self.last_out_pid >= 0 else 0
        self.tl0_offset = (self.last_out_tl0 + 1 - tl0) & 0xFF if tl0 >= 0 and self.last_out_tl0 >= 0 else 0
        self.drop_pid = -1
        self.last_in_pid = -2  # not a picture id: this keyframe is a new frame
        self.max_tid = self.target_tid
        self._segments = [(0, self.seq_offset, self.pid_offset, self.tl0_offset)]

    def _rebase(self, seq: int, ts: int, arrival_ms: int) -> None:
        out_seq = (self.last_out_seq + 1) & SEQ_MASK
        if self.last_out_ms < 0:
            out_ts = self.last_out_ts
        else:
            elapsed = max(1, arrival_ms - self.last_out_ms)
            out_ts = (self.last_out_ts + elapsed * self.clock_rate // 1000) & TS_MASK
        self.seq_offset = (out_seq - seq) & SEQ_MASK
        self.ts_offset = (out_ts - ts) & TS_MASK
        self.first_in_seq = seq
        self.highest_in_seq = seq
        self.ext_first = self.ext_highest = 0
        self.last_out_seq = out_seq
        self.last_out_ts = out_ts
        self.last_out_ms = arrival_ms
        self.started = True
        self._segments = [(0, self.seq_offset, self.pid_offset, self.tl0_offset)]
        self._padding.clear()

    def insert_padding(self) -> tuple[int, int] | None:
        """Take the next output sequence number for a padding-only packet (a bandwidth probe);
        returns (out_seq, out_ts) or None when not forwarding. Media goes on after it with the
        offset moved by one; a straggler older than the newest packet is dropped from now on
        (its number would be taken), and NACKs still map back across the change."""
        if not self.started or self.paused:
            return None
        out_seq = (self.last_out_seq + 1) & SEQ_MASK
        self.seq_offset = (self.seq_offset + 1) & SEQ_MASK
        self.last_out_seq = out_seq
        self.ext_first = self.ext_highest + 1
        segment = (self.ext_highest + 1, self.seq_offset, self.pid_offset, self.tl0_offset)
        if self._segments and self._segments[-1][0] == segment[0]:
            # padding after padding, no media between: one segment for the burst (24 packets
            # after each frame used to fill MAX_SEGMENTS within 3 frames, and a NACK from a
            # 100-ms line then could no longer be mapped back to what it asked for)
            self._segments[-1] = segment
        else:
            self._segments.append(segment)
            if len(self._segments) > MAX_SEGMENTS:
                del self._segments[0]
        self._padding.append(out_seq)
        return out_seq, self.last_out_ts

    def is_padding(self, out_seq: int) -> bool:
        """Whether ``out_seq`` was a padding-only probe packet (nothing to retransmit)."""
        return out_seq in self._padding

    def incoming_seq(self, out_seq: int) -> int | None:
        """The incoming sequence number behind ``out_seq`` (for NACK), if it is ours."""
        found = self.incoming(out_seq)
        return None if found is None else found[0]

    def incoming(self, out_seq: int) -> tuple[int, int, int] | None:
        """(incoming sequence number, picture id offset, TL0PICIDX offset) that ``out_seq`` was
        sent with, if it is ours: a retransmission carries the picture id it had the first time."""
        if not self.started or out_seq in self._padding:
            return None
        upper = self.ext_highest + 1  # the segment being looked at ends before this index
        for ext_start, offset, pid_offset, tl0_offset in reversed(self._segments):
            seq = (out_seq - offset) & SEQ_MASK
            delta = ((seq - self.highest_in_seq + 0x8000) & SEQ_MASK) - 0x8000
            ext = self.ext_highest + delta
            if delta <= 0 and ext_start <= ext < upper:
                return seq, pid_offset, tl0_offset
            upper = ext_start
        return None  # not sent yet, or before this segment started

    def out_timestamp_at(self, in_ts: int) -> int:
        return (in_ts + self.ts_offset) & TS_MASK
