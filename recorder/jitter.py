"""A small reorder buffer keyed by RTP sequence number.

Packets come out in sequence order. A missing packet is waited for at most ``max_wait`` seconds
(or until ``capacity`` later packets are queued); then the buffer skips it and reports a
:class:`Gap` so the caller can drop the broken frame and ask the sender for a keyframe.
Duplicates and packets that arrive after they were skipped are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from recorder.depacketize import RtpPacket

# A jump this large (either way) is a restarted stream, not loss or reordering.
RESTART_DISTANCE = 3000


@dataclass(frozen=True, slots=True)
class Gap:
    """``lost`` packets were skipped before the next packet (0: the stream restarted)."""

    lost: int


@dataclass
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    restarts: int = 0
    reordered: int = 0


class JitterBuffer:
    def __init__(self, max_wait: float = 0.1, capacity: int = 256) -> None:
        if max_wait < 0 or capacity < 1:
            raise ValueError("max_wait must be >= 0 and capacity >= 1")
        self.max_wait = max_wait
        self.capacity = capacity
        self.stats = JitterStats()
        self._highest: int | None = None  # extended sequence number of the newest packet
        self._next: int | None = None  # extended sequence number expected next
        self._queue: dict[int, tuple[RtpPacket, float]] = {}
        self._nacked: set[int] = set()

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq + (1 << 16)  # room below for early reordering
        delta = (seq - self._highest) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self._highest + delta

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket | Gap]:
        """Add a packet that arrived at ``now`` (seconds); return what is ready, in order."""
        self.stats.received += 1
        ext = self._extend(packet.sequence)
        out: list[RtpPacket | Gap] = []
        if self._highest is not None and abs(ext - self._highest) > RESTART_DISTANCE:
            # The stream restarted (new sender or a huge hole): release what we hold, begin again.
            out += self._drain_all()
            self.stats.restarts += 1
            out.append(Gap(0))
            self._highest = None
            ext = self._extend(packet.sequence)
            self._next = ext
        if self._next is None:
            self._next = ext
        if ext < self._next:
            self.stats.late += 1
            return out
        if ext in self._queue:
            self.stats.duplicates += 1
            return out
        if self._highest is not None and ext < self._highest:
            self.stats.reordered += 1
        self._queue[ext] = (packet, now)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        out += self._drain()
        out += self.poll(now)
        return out

    def _drain(self) -> list[RtpPacket | Gap]:
        out: list[RtpPacket | Gap] = []
        assert self._next is not None
        while self._next in self._queue:
            out.append(self._queue.pop(self._next)[0])
            self._next += 1
        return out

    def _drain_all(self) -> list[RtpPacket | Gap]:
        out: list[RtpPacket | Gap] = []
        while self._queue:
            out += self._skip()
        return out

    def _skip(self) -> list[RtpPacket | Gap]:
        """Give up on the missing packet(s) before the oldest queued one."""
        assert self._next is not None
        first = min(self._queue)
        lost = first - self._next
        self.stats.lost += lost
        self._next = first
        return [Gap(lost), *self._drain()]

    def poll(self, now: float) -> list[RtpPacket | Gap]:
        """Release packets whose missing predecessors waited too long."""
        out: list[RtpPacket | Gap] = []
        while self._queue:
            oldest_arrival = min(arrival for _, arrival in self._queue.values())
            if len(self._queue) <= self.capacity and now - oldest_arrival < self.max_wait:
                break
            out += self._skip()
        return out

    def missing(self, limit: int = 64) -> list[int]:
        """Sequence numbers (16-bit) still missing and not reported here before (for NACK)."""
        if self._next is None or self._highest is None or not self._queue:
            return []
        self._nacked = {s for s in self._nacked if s >= self._next}
        start = max(self._next, self._highest - limit)
        out = [ext for ext in range(start, self._highest) if ext not in self._queue and ext not in self._nacked]
        self._nacked.update(out)
        return [ext & 0xFFFF for ext in out]

    def flush(self) -> list[RtpPacket | Gap]:
        """Release everything (end of stream)."""
        return self._drain_all()

    @property
    def pending(self) -> int:
        return len(self._queue)
