"""RTP parsing and depacketization: RTP packets in, whole encoded frames out.

Nothing here decodes media. The parsers only read the few header bits they need:
- RTP fixed header, CSRCs, one-byte (RFC 8285, 0xBEDE) and two-byte (0x100X) extensions, padding;
- RTCP sender reports (NTP ↔ RTP timestamp pairs) for audio/video synchronisation;
- VP8 (RFC 7741): payload descriptor, frame assembly by start bit / marker, keyframe bit,
  frame size from the keyframe header;
- Opus (RFC 7587): one RTP packet is one frame;
- H.264 (RFC 6184): single NAL unit, STAP-A and FU-A, reassembled into Annex-B access units.

Every parser raises :class:`RtpError` (a ``ValueError``) on malformed input, never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from sfu import rtcp, rtp, vp8

_ANNEXB_START = b"\x00\x00\x00\x01"

# One error class with the SFU's RTP reader (``sfu/rtp.py``): a ``ValueError``.
RtpError = rtp.RtpError
# The packet writer lives with the reader; ``build_rtp`` is its name here (tests, packetize).
build_rtp = rtp.build_packet


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes
    csrcs: tuple[int, ...] = ()
    # Parsed RFC 8285 extensions (id -> data); empty for other profiles.
    extensions: dict[int, bytes] = field(default_factory=dict)
    # Profile and raw words of a header extension with a profile other than RFC 8285.
    extension_profile: int | None = None
    padding: int = 0


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet (RFC 3550) into a packet object with the shared reader
    (``sfu/rtp.py``: :func:`~sfu.rtp.parse_header`, :func:`~sfu.rtp.csrcs`,
    :func:`~sfu.rtp.extensions`)."""
    h = rtp.parse_header(data)
    if 72 <= h.payload_type <= 76:
        raise RtpError(f"payload type {h.payload_type} is RTCP, not RTP")
    known = h.ext_profile == 0xBEDE or h.ext_profile & 0xFFF0 == 0x1000
    return RtpPacket(
        payload_type=h.payload_type,
        sequence=h.sequence,
        timestamp=h.timestamp,
        ssrc=h.ssrc,
        marker=h.marker,
        payload=bytes(data[h.payload_offset:h.payload_end]),
        csrcs=rtp.csrcs(data),
        extensions=rtp.extensions(data, h),
        extension_profile=h.ext_profile if data[0] & 0x10 and not known else None,
        padding=len(data) - h.payload_end,
    )


# ----------------------------------------------------------------------------------------- RTCP


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_seconds: float  # NTP time as seconds since 1900
    rtp_timestamp: int
    packet_count: int
    octet_count: int

    @property
    def unix_seconds(self) -> float:
        return self.ntp_seconds - NTP_UNIX_OFFSET


NTP_UNIX_OFFSET = 2_208_988_800


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192..223 live in the second byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_sender_reports(data: bytes) -> list[SenderReport]:
    """Return the sender reports of a (compound) RTCP packet; other packet types are skipped
    (read by the SFU's parser, :func:`sfu.rtcp.parse`)."""
    try:
        records = list(rtcp.parse(data))
    except rtcp.RtcpError as exc:
        raise RtpError(str(exc)) from None
    return [
        SenderReport(ssrc=r.ssrc, ntp_seconds=(r.ntp >> 32) + (r.ntp & 0xFFFFFFFF) / 2**32, rtp_timestamp=r.rtp_ts,
                     packet_count=r.packets, octet_count=r.octets)
        for r in records
        if isinstance(r, rtcp.SenderReport)
    ]


def build_sender_report(ssrc: int, unix_seconds: float, rtp_timestamp: int, packets: int = 0, octets: int = 0) -> bytes:
    ntp = unix_seconds + NTP_UNIX_OFFSET
    hi = int(ntp)
    lo = int((ntp - hi) * 2**32) & 0xFFFFFFFF
    return rtcp.build_sr(ssrc, hi << 32 | lo, rtp_timestamp, packets, octets)


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """RTCP Picture Loss Indication (RFC 4585 §6.3.1): please send a keyframe."""
    return rtcp.build_pli(sender_ssrc & 0xFFFFFFFF, media_ssrc & 0xFFFFFFFF)


def build_nack(sender_ssrc: int, media_ssrc: int, sequences: list[int]) -> bytes:
    """RTCP generic NACK (RFC 4585 §6.2.1) for the given 16-bit sequence numbers."""
    return rtcp.build_nack(sender_ssrc & 0xFFFFFFFF, media_ssrc & 0xFFFFFFFF, sequences)


def _feedback(data: bytes) -> list[rtcp.RtcpRecord]:
    try:
        return list(rtcp.parse(data))
    except rtcp.RtcpError:
        return []  # as before: nothing usable in a malformed packet


def parse_nack(data: bytes) -> list[int]:
    """Sequence numbers asked for by the generic NACKs in a (compound) RTCP packet."""
    return [seq for r in _feedback(data) if isinstance(r, rtcp.Nack) for seq in r.seqs]


def parse_pli(data: bytes) -> list[int]:
    """Media SSRCs for which a (compound) RTCP packet asks a keyframe."""
    return [r.media_ssrc for r in _feedback(data) if isinstance(r, rtcp.KeyframeRequest) and not r.fir]

@dataclass(slots=True)
class EncodedFrame:
    """One encoded frame (video) or packet (audio), as it goes into the container."""

    data: bytes
    timestamp: int  # RTP timestamp (32-bit, as received)
    keyframe: bool
    width: int = 0  # video keyframes, when the bitstream says
    height: int = 0


class Depacketizer:
    """Base class: feed RTP packets in sequence order, get complete frames."""

    codec: str = ""
    kind: str = ""
    clock_rate: int = 90000

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget a partial frame (called after a sequence gap)."""


class OpusDepacketizer(Depacketizer):
    codec = "opus"
    kind = "audio"
    clock_rate = 48000

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        if not packet.payload:
            return []  # DTX/keepalive: nothing to store
        return [EncodedFrame(packet.payload, packet.timestamp, True)]


def parse_vp8_descriptor(payload: bytes) -> tuple[int, bool, int]:
    """Return (header length, start-of-partition, partition index) of an RFC 7741 payload
    (read by the SFU's parser, :func:`sfu.vp8.parse`)."""
    if not payload:
        raise RtpError("empty VP8 payload")
    d = vp8.parse(payload)
    if d.length == 0 or d.length > len(payload):
        raise RtpError("VP8 descriptor truncated")
    return d.length, d.partition_start, d.partition


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width/height of a VP8 keyframe (RFC 6386 §9.1), or None for an interframe."""
    if len(frame) < 10 or frame[0] & 0x01:
        return None
    if frame[3:6] != b"\x9d\x01\x2a":
        raise RtpError("VP8 keyframe without the start code")
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


class VP8Depacketizer(Depacketizer):
    codec = "vp8"
    kind = "video"

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._timestamp: int | None = None
        self._last_seq = -1

    def reset(self) -> None:
        self._parts = []
        self._timestamp = None

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        if not packet.payload:
            return []
        header_len, start, pid = parse_vp8_descriptor(packet.payload)
        data = packet.payload[header_len:]
        contiguous = packet.sequence == (self._last_seq + 1) & 0xFFFF
        self._last_seq = packet.sequence
        if start and pid == 0:
            self._parts = [data]
            self._timestamp = packet.timestamp
        elif not contiguous or self._timestamp is None or packet.timestamp != self._timestamp:
            self.reset()  # continuation of a frame whose start we do not have
            return []
        else:
            self._parts.append(data)
        if not packet.marker:
            return []
        frame = b"".join(self._parts)
        ts = self._timestamp
        self.reset()
        if not frame:
            return []
        size = vp8_keyframe_size(frame)
        if size is None:
            return [EncodedFrame(frame, ts, False)]
        return [EncodedFrame(frame, ts, True, size[0], size[1])]


# ---------------------------------------------------------------------------------------- H.264

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_STAP_A = 24
NAL_FU_A = 28


class H264Depacketizer(Depacketizer):
    """RFC 6184 packetization-mode 0/1 to Annex-B access units.

    A keyframe is an access unit with an IDR slice. SPS/PPS seen earlier are put in front of an
    IDR that arrives without them, so every keyframe can start a file on its own.
    """

    codec = "h264"
    kind = "video"

    def __init__(self) -> None:
        self._nals: list[bytes] = []
        self._fu: bytearray | None = None
        self._timestamp: int | None = None
        self._broken = False
        self._sps: bytes | None = None
        self._pps: bytes | None = None
        self._last_seq = -1

    def reset(self) -> None:
        self._nals = []
        self._fu = None
        self._timestamp = None
        self._broken = False

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        out: list[EncodedFrame] = []
        if self._timestamp is not None and packet.timestamp != self._timestamp:
            # The previous access unit never saw its marker bit: emit what is complete.
            out += self._finish()
        if self._timestamp is None:
            self._timestamp = packet.timestamp
        elif packet.sequence != (self._last_seq + 1) & 0xFFFF:
            self._broken = True  # a packet of this access unit is missing
        self._last_seq = packet.sequence
        payload = packet.payload
        if not payload:
            return out
        try:
            self._add_payload(payload)
        except RtpError:
            self._broken = True
            raise
        finally:
            if packet.marker:
                out += self._finish()
        return out

    def _add_payload(self, payload: bytes) -> None:
        nal_type = payload[0] & 0x1F
        if payload[0] & 0x80:
            raise RtpError("H.264 NAL with the forbidden bit set")
        if 1 <= nal_type <= 23:
            self._fu = None
            self._nals.append(bytes(payload))
        elif nal_type == NAL_STAP_A:
            self._fu = None
            i = 1
            while i < len(payload):
                if i + 2 > len(payload):
                    raise RtpError("STAP-A truncated in a NAL size")
                (size,) = struct.unpack_from("!H", payload, i)
                i += 2
                if size == 0 or i + size > len(payload):
                    raise RtpError("STAP-A NAL size overruns the packet")
                self._nals.append(bytes(payload[i : i + size]))
                i += size
        elif nal_type == NAL_FU_A:
            if len(payload) < 3:
                raise RtpError("FU-A packet too short")
            fu_header = payload[1]
            start, end = bool(fu_header & 0x80), bool(fu_header & 0x40)
            if start:
                self._fu = bytearray([(payload[0] & 0xE0) | (fu_header & 0x1F)])
            elif self._fu is None:
                self._broken = True  # middle of a NAL whose start is lost
                return
            self._fu += payload[2:]
            if end:
                self._nals.append(bytes(self._fu))
                self._fu = None
        else:
            raise RtpError(f"unsupported H.264 packetization NAL type {nal_type}")

    def _finish(self) -> list[EncodedFrame]:
        nals, ts, broken, pending_fu = self._nals, self._timestamp, self._broken, self._fu
        self.reset()
        if broken or pending_fu is not None or not nals or ts is None:
            return []
        types = [n[0] & 0x1F for n in nals]
        for nal, t in zip(nals, types, strict=True):
            if t == NAL_SPS:
                self._sps = nal
            elif t == NAL_PPS:
                self._pps = nal
        keyframe = NAL_IDR in types
        if keyframe:
            prefix: list[bytes] = []
            if NAL_SPS not in types and self._sps is not None:
                prefix.append(self._sps)
            if NAL_PPS not in types and self._pps is not None:
                prefix.append(self._pps)
            nals = prefix + nals
            keyframe = self._sps is not None and self._pps is not None
        width = height = 0
        if keyframe and self._sps is not None:
            try:
                width, height = h264_sps_size(self._sps)
            except RtpError:
                width = height = 0
        data = b"".join(_ANNEXB_START + n for n in nals)
        return [EncodedFrame(data, ts, keyframe, width, height)]


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise RtpError("SPS truncated")
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise RtpError("bad Exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        v = self.ue()
        return (v + 1) // 2 if v & 1 else -(v // 2)


def _unescape_rbsp(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def h264_sps_size(sps: bytes) -> tuple[int, int]:
    """Picture width/height (after cropping) from an SPS NAL unit (with its 1-byte header)."""
    r = _BitReader(_unescape_rbsp(sps[1:]))
    profile_idc = r.bits(8)
    r.bits(16)  # constraint flags + level
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            r.bit()
        r.ue()
        r.ue()
        r.bit()
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    last, nxt = 8, 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt != 0:
                            nxt = (last + r.se()) % 256
                        last = nxt if nxt != 0 else last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()
    r.bit()  # direct_8x8_inference
    width = width_mbs * 16
    height = height_units * 16 * (2 - frame_mbs_only)
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        crop_x = 2 if chroma_format_idc in (1, 2) else 1
        crop_y = (2 if chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    if width <= 0 or height <= 0:
        raise RtpError("SPS gives a non-positive picture size")
    return width, height


def depacketizer_for(codec: str) -> Depacketizer:
    """A fresh depacketizer for a codec name (``vp8``, ``opus``, ``h264``; case-insensitive)."""
    name = codec.lower().split("/")[0]
    if name == "vp8":
        return VP8Depacketizer()
    if name == "opus":
        return OpusDepacketizer()
    if name == "h264":
        return H264Depacketizer()
    raise ValueError(f"cannot record codec {codec!r} (supported: VP8, Opus, H.264)")
