"""RTP packets with ``struct``: the one RTP header module of the SFU and the recorder.

- :func:`parse_header` reads the fixed header, skips CSRCs and the extension block and strips
  padding (RFC 3550 §5.1) without packet objects: the SFU's hot path uses it on every packet;
- :func:`find_extension` looks up one RFC 8285 element (one-byte ``0xBEDE`` or two-byte
  ``0x100X`` form) lazily, for the SFU; :func:`extensions` reads them all, strictly, and
  :func:`csrcs` the CSRC list, for the recorder's packet objects (``recorder/depacketize.py``);
- :func:`build_packet` writes a packet (recorder tests, ``recorder/packetize.py``, the bots).

RTCP (compound splitting, every packet type the SFU and recorder use) is ``sfu/rtcp.py``.
Everything here works on ``bytes`` as they come out of SRTP unprotect; nothing parses the
payload except the few bytes keyframe detection needs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from sfu import vp8

RTP_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
RTP_HEADER_SIZE = 12
RTP_VERSION = 2


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


def csrcs(data: bytes) -> tuple[int, ...]:
    """The CSRC list of a packet :func:`parse_header` accepted."""
    count = data[0] & 0x0F
    return struct.unpack_from(f"!{count}I", data, RTP_HEADER_SIZE) if count else ()


def extensions(data: bytes, header: RtpHeader) -> dict[int, bytes]:
    """Every RFC 8285 header extension element (id -> value) of a packet, one-byte (``0xBEDE``)
    or two-byte (``0x100X``) form; empty for no block or another profile. Unlike the lenient
    :func:`find_extension` it raises :class:`RtpError` for an element that overruns the block."""
    if not header.ext_length:
        return {}
    block = data[header.ext_offset : header.ext_offset + header.ext_length]
    if header.ext_profile == 0xBEDE:
        return _one_byte_elements(block)
    if header.ext_profile & 0xFFF0 == 0x1000:
        return _two_byte_elements(block)
    return {}


def _one_byte_elements(block: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i < len(block):
        byte = block[i]
        if byte == 0:  # padding between elements
            i += 1
            continue
        ext_id, length = byte >> 4, (byte & 0x0F) + 1
        if ext_id == 15:  # reserved: stop parsing
            break
        i += 1
        if i + length > len(block):
            raise RtpError("one-byte header extension element overruns the block")
        out[ext_id] = bytes(block[i : i + length])
        i += length
    return out


def _two_byte_elements(block: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i < len(block):
        ext_id = block[i]
        if ext_id == 0:
            i += 1
            continue
        if i + 2 > len(block):
            raise RtpError("two-byte header extension element truncated")
        length = block[i + 1]
        i += 2
        if i + length > len(block):
            raise RtpError("two-byte header extension element overruns the block")
        out[ext_id] = bytes(block[i : i + length])
        i += length
    return out


def build_packet(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    extensions: dict[int, bytes] | None = None,
    padding: int = 0,
    csrcs: tuple[int, ...] = (),
) -> bytes:
    """Serialize an RTP packet (one-byte header extensions when ``extensions`` is given)."""
    b0 = (RTP_VERSION << 6) | (0x20 if padding else 0) | len(csrcs)
    ext_block = b""
    if extensions:
        b0 |= 0x10
        body = bytearray()
        for ext_id, value in extensions.items():
            if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
                raise ValueError("one-byte extensions need id 1..14 and 1..16 bytes")
            body.append((ext_id << 4) | (len(value) - 1))
            body += value
        while len(body) % 4:
            body.append(0)
        ext_block = struct.pack("!HH", 0xBEDE, len(body) // 4) + bytes(body)
    header = RTP_HEADER.pack(
        b0,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )
    csrc_block = struct.pack(f"!{len(csrcs)}I", *csrcs) if csrcs else b""
    pad = (b"\x00" * (padding - 1) + bytes([padding])) if padding else b""
    return header + csrc_block + ext_block + payload + pad


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
