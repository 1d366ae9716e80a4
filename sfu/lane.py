"""Per-subscriber state shared by the Python forwarding code and the C fan-out loop.

A :class:`Lane` is one DownTrack's state: the :class:`~sfu.forwarder.Forwarder`'s rewrite
state (the Forwarder subclasses Lane and keeps all the logic) plus the subscriber's SSRC,
payload type and counters, and the :class:`Egress` of its transport (a socket, an SRTP session
and, on the node's shared media port, the subscriber's address; managed by
:class:`sfu.glue.RawTransport`). On the shared port the C loop sends all copies of a packet with
one ``sendmmsg`` per up to 64 (``set_batch_size``; ``batch_stats`` counts the calls).

:func:`fanout` sends one incoming packet to all DownTracks of an UpTrack in one C call
(``sfu/_fanout.c``); lanes that are not in the steady state go through ``DownTrack.forward``.
Without the compiled extension (no C compiler at install time) the same names are defined
here in Python, ``fanout`` is None, and the UpTrack loops in Python: same behaviour, more µs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["FAST_PATH", "AeadSession", "Egress", "Lane", "batch_stats", "c_forwarded", "fanout", "set_batch_size",
           "set_protect", "use_compiled"]


TWCC_RING = 8192  # transport-wide sequence numbers remembered per connection (as in C)


class _PyEgress:
    """Python stand-in: never ready, so every packet takes ``DownTrack.forward``. Keeps the
    transport-wide sequence numbers as the C one does (``sfu/_fanout.c``, TWCC)."""

    __slots__ = ("fd", "keep", "sent", "send_errors", "protect_errors", "twcc_next", "_twcc")

    def __init__(self) -> None:
        self.fd = -1
        self.keep: Any = None
        self.sent = self.send_errors = self.protect_errors = 0
        self.twcc_next = 0
        self._twcc: list[tuple[int, float, int, int, int]] | None = None

    def set(self, fd: int, ctx: int, keep: Any, address: bytes = b"", aead: Any = None) -> None:
        pass  # nothing in Python reads it

    def clear(self) -> None:
        self.keep = None

    def twcc_enable(self) -> None:
        if self._twcc is None:
            self._twcc = [(0x10000, 0.0, 0, 0, 0)] * TWCC_RING

    def twcc_take(self, size: int, ssrc: int = 0, rtp_seq: int = 0) -> int:
        if self._twcc is None:
            raise ValueError("transport-wide sequence numbers are not enabled")
        seq = self.twcc_next & 0xFFFF
        self.twcc_next += 1
        self._twcc[seq & (TWCC_RING - 1)] = (seq, time.monotonic(), size, ssrc, rtp_seq & 0xFFFF)
        return seq

    def twcc_sent(self, seq: int) -> tuple[float, int] | None:
        if self._twcc is None or not 0 <= seq <= 0xFFFF:
            return None
        held, at, size, _, _ = self._twcc[seq & (TWCC_RING - 1)]
        return (at, size) if held == seq else None

    def twcc_packet(self, seq: int) -> tuple[int, int] | None:
        if self._twcc is None or not 0 <= seq <= 0xFFFF:
            return None
        held, _, _, ssrc, rtp_seq = self._twcc[seq & (TWCC_RING - 1)]
        return (ssrc, rtp_seq) if held == seq else None


class _PyLane:
    __slots__ = (
        "egress",
        "source",
        "clock_rate",
        "is_video",
        "started",
        "paused",
        "seq_offset",
        "ts_offset",
        "first_in_seq",
        "highest_in_seq",
        "ext_first",
        "ext_highest",
        "last_out_seq",
        "last_out_ts",
        "last_out_ms",
        "dropped_waiting",
        "out_seq",
        "out_ts",
        "vp8",
        "pid_offset",
        "tl0_offset",
        "last_in_pid",
        "last_out_pid",
        "last_out_tl0",
        "drop_pid",
        "max_tid",
        "target_tid",
        "out_pid",
        "out_tl0",
        "dropped_temporal",
        "ssrc",
        "payload_type",
        "abs_send_time_id",
        "twcc_id",
        "packets",
        "octets",
        "first_sent_at",
    )

    def __init__(self) -> None:
        self.egress: Any = None
        self.source: object = None
        self.clock_rate = 0
        self.is_video = self.started = self.paused = False
        self.seq_offset = self.ts_offset = self.first_in_seq = self.highest_in_seq = 0
        self.ext_first = self.ext_highest = self.last_out_seq = self.last_out_ts = 0
        self.last_out_ms = -1
        self.dropped_waiting = self.out_seq = self.out_ts = 0
        self.vp8 = False
        self.pid_offset = self.tl0_offset = self.last_in_pid = self.last_out_pid = self.last_out_tl0 = 0
        self.drop_pid = self.max_tid = self.target_tid = self.out_pid = self.out_tl0 = self.dropped_temporal = 0
        self.ssrc = self.payload_type = self.abs_send_time_id = self.packets = self.octets = 0
        self.twcc_id = 0
        self.first_sent_at = 0.0


FanoutFn = Callable[[tuple[Any, ...], tuple[Any, ...], bytes, int, int, int, int, bool], int]

try:
    if os.environ.get("CLASSROOM_NO_EXTENSION"):  # tests of the fallback (tests/unit/sfu/test_lane.py)
        raise ImportError("CLASSROOM_NO_EXTENSION is set")
    from sfu import _fanout  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler
    _fanout = None

FAST_PATH = "c" if _fanout is not None else "python"

if TYPE_CHECKING:  # both implementations have the same fields: type-check against Python's
    Lane = _PyLane
    Egress = _PyEgress
    fanout: FanoutFn | None
    set_protect: Callable[[int], None]
    c_forwarded: Callable[[], int]
    batch_stats: Callable[[], tuple[int, int]]
    set_batch_size: Callable[[int], None]
    AeadSession: Any
elif _fanout is not None:
    Lane = _fanout.Lane
    Egress = _fanout.Egress
    fanout = _fanout.fanout
    set_protect = _fanout.set_protect
    c_forwarded = _fanout.c_forwarded
    batch_stats = _fanout.batch_stats  # (sendmmsg calls, datagrams sent in them)
    set_batch_size = _fanout.set_batch_size  # copies per sendmmsg, 1..64
    # the direct AES-GCM protect (built with OpenSSL's libcrypto; sfu/_fanout.c, "AeadSession")
    AeadSession = getattr(_fanout, "AeadSession", None)
else:
    AeadSession = None
    Lane = _PyLane
    Egress = _PyEgress
    fanout = None

    def set_protect(address: int) -> None:
        pass

    def c_forwarded() -> int:
        return 0

    def batch_stats() -> tuple[int, int]:
        return (0, 0)

    def set_batch_size(n: int) -> None:
        if not 1 <= n <= 64:
            raise ValueError("the batch size must be 1..64")


def use_compiled(enabled: bool) -> None:
    """Forward with the compiled loop (if built) or, with False, the pure-Python one. Read by
    ``UpTrack.on_rtp`` at every packet, so it takes effect at once."""
    global fanout
    fanout = _fanout.fanout if enabled and _fanout is not None else None
