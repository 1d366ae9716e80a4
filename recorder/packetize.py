"""RTP packetizers for VP8 (RFC 7741), Opus (RFC 7587) and H.264 (RFC 6184, mode 1).

Used by the recorder tests and the load-test bots to turn already-encoded frames into RTP
packets. No media is encoded or decoded here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from recorder.depacketize import build_rtp

DEFAULT_MTU_PAYLOAD = 1200


@dataclass
class Packetizer:
    """Common RTP state: SSRC, payload type, sequence number (wraps at 2^16)."""

    payload_type: int
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    sequence: int = field(default_factory=lambda: random.getrandbits(16))
    max_payload: int = DEFAULT_MTU_PAYLOAD
    clock_rate: int = 90000
    # Packets built so far (for sender reports).
    packet_count: int = 0
    octet_count: int = 0

    def _packet(self, timestamp: int, payload: bytes, marker: bool) -> bytes:
        data = build_rtp(self.payload_type, self.sequence, timestamp, self.ssrc, payload, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return data

    def packetize(self, frame: bytes, timestamp: int) -> list[bytes]:
        raise NotImplementedError


@dataclass
class OpusPacketizer(Packetizer):
    payload_type: int = 111
    clock_rate: int = 48000

    def packetize(self, frame: bytes, timestamp: int) -> list[bytes]:
        return [self._packet(timestamp, frame, True)]


@dataclass
class VP8Packetizer(Packetizer):
    """Payload descriptor with a 15-bit PictureID, as browsers send it."""

    payload_type: int = 96
    picture_id: int = field(default_factory=lambda: random.getrandbits(15))

    def packetize(self, frame: bytes, timestamp: int) -> list[bytes]:
        if not frame:
            return []
        chunk = self.max_payload - 4
        pieces = [frame[i : i + chunk] for i in range(0, len(frame), chunk)]
        out = []
        pid = self.picture_id
        for n, piece in enumerate(pieces):
            descriptor = bytes([0x90 if n == 0 else 0x80, 0x80, 0x80 | (pid >> 8), pid & 0xFF])
            out.append(self._packet(timestamp, descriptor + piece, n == len(pieces) - 1))
        self.picture_id = (pid + 1) & 0x7FFF
        return out


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream (3- or 4-byte start codes)."""
    nals: list[bytes] = []
    i = 0
    n = len(data)
    starts: list[tuple[int, int]] = []  # (start code position, payload position)
    while i + 3 <= n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            pos = i - 1 if i > 0 and data[i - 1] == 0 else i
            starts.append((pos, i + 3))
            i += 3
        else:
            i += 1
    for k, (_, payload_pos) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else n
        nal = data[payload_pos:end]
        if nal:
            nals.append(nal)
    return nals


@dataclass
class H264Packetizer(Packetizer):
    """Packetization mode 1: small parameter sets aggregated in STAP-A, big NALs in FU-A."""

    payload_type: int = 102

    def packetize(self, frame: bytes, timestamp: int) -> list[bytes]:
        nals = split_annexb(frame)
        payloads: list[bytes] = []
        pending: list[bytes] = []  # NALs waiting to be aggregated

        def flush() -> None:
            if not pending:
                return
            if len(pending) == 1:
                payloads.append(pending[0])
            else:
                nri = max(n[0] & 0x60 for n in pending)
                body = b"".join(len(n).to_bytes(2, "big") + n for n in pending)
                payloads.append(bytes([nri | 24]) + body)
            pending.clear()

        for nal in nals:
            if len(nal) <= self.max_payload:
                size = 1 + sum(2 + len(n) for n in pending) + 2 + len(nal)
                if pending and size > self.max_payload:
                    flush()
                pending.append(nal)
                continue
            flush()
            header = nal[0]
            indicator = (header & 0xE0) | 28
            body = nal[1:]
            chunk = self.max_payload - 2
            for i in range(0, len(body), chunk):
                fu = header & 0x1F
                if i == 0:
                    fu |= 0x80
                if i + chunk >= len(body):
                    fu |= 0x40
                payloads.append(bytes([indicator, fu]) + body[i : i + chunk])
        flush()
        return [self._packet(timestamp, p, k == len(payloads) - 1) for k, p in enumerate(payloads)]


def packetizer_for(codec: str, **kwargs: int) -> Packetizer:
    name = codec.lower()
    if name == "vp8":
        return VP8Packetizer(**kwargs)
    if name == "opus":
        return OpusPacketizer(**kwargs)
    if name == "h264":
        return H264Packetizer(**kwargs)
    raise ValueError(f"no packetizer for codec {codec!r}")
