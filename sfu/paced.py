"""The asyncio side of pacing: one subscriber connection's paced video goes out of a
:class:`sfu.bwe.pacer.Pacer` on a timer instead of straight from the fan-out.

Only a constrained connection is paced (the Link decides, ``Link.pace_bps``): its video
DownTracks leave the C loop's lane fast path (their lane's ``egress`` is cleared, so the loop
hands their packets to ``DownTrack.forward``) and queue here; everybody else keeps the fast
path. Audio is never paced.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from sfu.bwe.pacer import Pacer, PacerConfig
from sfu.downtrack import restamp

SRTP_OVERHEAD = 10 + 28  # auth tag + IP/UDP headers: what the line carries besides the RTP bytes


def _no_twcc(size: int, ssrc: int = 0, rtp_seq: int = 0) -> int:
    return 0


class PartsTransport(Protocol):
    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool: ...


class PacedSender:
    def __init__(self, transport: PartsTransport, config: PacerConfig | None = None) -> None:
        self.transport = transport
        self.pacer: Pacer[tuple[bytes, bytes]] = Pacer(config)
        self._timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.closed = False

    def set_estimate(self, bps: float) -> None:
        self.pacer.set_estimate(bps)

    def set_rate(self, bps: float) -> None:
        self.pacer.set_rate(bps)

    def send(self, header: bytes, payload: bytes) -> bool:
        if self.closed:
            return False
        self.pacer.push((header, payload), len(header) + len(payload) + SRTP_OVERHEAD)
        if self._timer is None:
            self._drain()
        return True

    def _drain(self) -> None:
        self._timer = None
        if self.closed:
            return
        now = time.monotonic()
        ms = int(now * 1000)
        egress = getattr(self.transport, "egress", None)  # (a test's transport may have none)
        take = egress.twcc_take if egress is not None else _no_twcc
        for header, payload in self.pacer.due(now):
            if header[0] & 0x10:
                # the abs-send-time and transport-wide number say when the packet left the
                # pacer, not when it queued: the receiver's estimate must not take our own
                # queue for the line's
                header = restamp(header, len(header) + len(payload), take, ms)
            if self.transport.send_rtp_parts(header, payload):
                self.sent += 1
        wait = self.pacer.next_due()
        if wait is not None:
            self._timer = asyncio.get_running_loop().call_later(max(wait, 0.001), self._drain)

    def stop(self) -> None:
        """Pacing off: what is queued goes now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for header, payload in self.pacer.flush():
            self.transport.send_rtp_parts(header, payload)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.pacer.flush()
