"""RTP header reading with ``struct``: just what forwarding needs, no packet objects.

Everything here works on ``bytes`` as they come out of SRTP unprotect. Nothing allocates
more than a slice; nothing parses the payload except the few bytes keyframe detection needs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from sfu import vp8

RTP_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
RTP_HEADER_SIZE = 12


class RtpError(ValueError):
    """A datagram that is not a usable RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpHeader:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload_offset: int  # where the payload starts (after CSRCs and the extension block)
    payload_end: int  # where the payload ends (before padding)
    ext_offset: int  # start of the extension data (after the 4-byte ext header), 0 if none
    ext_length: int  # length of the extension data in bytes
    ext_profile: int  # 0xBEDE one-byte, 0x100x two-byte


def parse_header(data: bytes) -> RtpHeader:
    """Read an RTP header (RFC 3550 §5.1); raise :class:`RtpError` saying what is malformed.
    The recorder's packet parser (``recorder/depacketize.py``) is built on this one."""
    n = len(data)
    if n < RTP_HEADER_SIZE:
        raise RtpError(f"RTP packet too short ({n} bytes)")
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError(f"RTP version {b0 >> 6} is not 2")
    offset = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
    if offset > n:
        raise RtpError("RTP packet truncated in the CSRC list")
    ext_offset = ext_length = ext_profile = 0
    if b0 & 0x10:
        if offset + 4 > n:
            raise RtpError("RTP packet truncated in the extension header")
        ext_profile, words = struct.unpack_from("!HH", data, offset)
        ext_offset = offset + 4
        ext_length = 4 * words
        offset = ext_offset + ext_length
        if offset > n:
            raise RtpError("RTP header extension longer than the packet")
    end = n
    if b0 & 0x20:
        if n <= offset:
            raise RtpError("RTP padding flag set but no padding")
        if data[-1] == 0 or n - data[-1] < offset:
            raise RtpError(f"invalid RTP padding length {data[-1]}")
        end = n - data[-1]
    return RtpHeader(
        payload_type=b1 & 0x7F,
        marker=bool(b1 & 0x80),
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload_offset=offset,
        payload_end=end,
        ext_offset=ext_offset,
        ext_length=ext_length,
        ext_profile=ext_profile,
    )


def find_extension(data: bytes, header: RtpHeader, ext_id: int) -> bytes | None:
    """Return the value of header extension ``ext_id`` (RFC 8285 one- or two-byte form)."""
    if not header.ext_length or not ext_id:
        return None
    pos = header.ext_offset
    end = pos + header.ext_length
    if header.ext_profile == 0xBEDE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            eid, length = b >> 4, (b & 0x0F) + 1
            if eid == 15:
                return None
            if eid == ext_id:
                return data[pos + 1 : pos + 1 + length]
            pos += 1 + length
    elif header.ext_profile & 0xFFF0 == 0x1000:
        while pos + 1 < end:
            eid = data[pos]
            if eid == 0:
                pos += 1
                continue
            length = data[pos + 1]
            if eid == ext_id:
                return data[pos + 2 : pos + 2 + length]
            pos += 2 + length
    return None


def audio_level(data: bytes, header: RtpHeader, ext_id: int) -> int | None:
    """RFC 6464 audio level: 0 (loudest, 0 dBov) .. 127 (silence); None if absent."""
    value = find_extension(data, header, ext_id)
    if not value:
        return None
    return value[0] & 0x7F


def vp8_is_keyframe(payload: bytes) -> bool:
    """True if this VP8 RTP payload (RFC 7741) starts a keyframe."""
    return vp8.is_keyframe(payload)


def h264_is_keyframe(payload: bytes) -> bool:
    """True if this H.264 RTP payload (RFC 6184) carries an IDR slice or SPS."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: walk the aggregated NAL units
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            if pos + 2 < len(payload) and payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal == 28 and len(payload) > 1:  # FU-A: start bit and the inner type
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def keyframe_detector(mime: str) -> Callable[[bytes], bool] | None:
    """The keyframe test for a codec (lower-case mime like ``video/vp8``), or None for audio."""
    mime = mime.lower()
    if mime == "video/vp8":
        return vp8_is_keyframe
    if mime == "video/h264":
        return h264_is_keyframe
    return None


def seq_newer(a: int, b: int) -> bool:
    """True if 16-bit sequence number ``a`` is after ``b`` (RFC 3550 wrap-around)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000
