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

SRTP_OVERHEAD = 10 + 28  # auth tag + IP/UDP headers: what the line carries besides the RTP bytes


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
        ast = b""
        for header, payload in self.pacer.due(now):
            if len(header) == 20 and header[0] & 0x10:
                # the abs-send-time says when the packet left the pacer, not when it queued:
                # the receiver's REMB must not take our own queue for the line's
                if not ast:
                    ast = ((int(now * 1000) << 18) // 1000 & 0xFFFFFF).to_bytes(3, "big")
                header = header[:17] + ast
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
