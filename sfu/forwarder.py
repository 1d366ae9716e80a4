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

SEQ_MASK = 0xFFFF
TS_MASK = 0xFFFFFFFF
# A packet this many sequence numbers behind the newest is dropped: libsrtp refuses to protect an
# index older than its 128-packet replay window, and the receiver has long given up on it.
MAX_REORDER = 100
# How many offset changes (padding insertions) a NACK can still be mapped back across.
MAX_SEGMENTS = 64


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
        # (extended incoming index of the first packet using it, seq_offset), oldest first
        self._segments: list[tuple[int, int]] = []
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
        self._segments = [(0, self.seq_offset)]
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
        self._segments.append((self.ext_highest + 1, self.seq_offset))
        if len(self._segments) > MAX_SEGMENTS:
            del self._segments[0]
        self._padding.append(out_seq)
        return out_seq, self.last_out_ts

    def is_padding(self, out_seq: int) -> bool:
        """Whether ``out_seq`` was a padding-only probe packet (nothing to retransmit)."""
        return out_seq in self._padding

    def incoming_seq(self, out_seq: int) -> int | None:
        """The incoming sequence number behind ``out_seq`` (for NACK), if it is ours."""
        if not self.started or out_seq in self._padding:
            return None
        upper = self.ext_highest + 1  # the segment being looked at ends before this index
        for ext_start, offset in reversed(self._segments):
            seq = (out_seq - offset) & SEQ_MASK
            delta = ((seq - self.highest_in_seq + 0x8000) & SEQ_MASK) - 0x8000
            ext = self.ext_highest + delta
            if delta <= 0 and ext_start <= ext < upper:
                return seq
            upper = ext_start
        return None  # not sent yet, or before this segment started

    def out_timestamp_at(self, in_ts: int) -> int:
        return (in_ts + self.ts_offset) & TS_MASK
