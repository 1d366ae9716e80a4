"""RTCP in small pieces: build the packets the SFU sends, parse the feedback it receives.

Builders return ``bytes`` ready for SRTCP protect. The parser walks a compound packet and
yields small records; anything malformed raises :class:`RtcpError` (the caller counts it).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

SR, RR, SDES, BYE, RTPFB, PSFB, XR = 200, 201, 202, 203, 205, 206, 207
XR_RRTR, XR_DLRR = 4, 5  # RFC 3611 block types: receiver reference time, delay since it
FMT_NACK, FMT_TWCC = 1, 15
FMT_PLI, FMT_FIR, FMT_AFB = 1, 4, 15

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970


class RtcpError(ValueError):
    pass


def ntp_now() -> int:
    """The current wall-clock time as a 64-bit NTP timestamp."""
    t = time.time() + NTP_EPOCH_OFFSET
    return (int(t) << 32) | int((t % 1) * (1 << 32))


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (what LSR carries)."""
    return (ntp >> 16) & 0xFFFFFFFF


# --- builders -------------------------------------------------------------------------


def build_sr(ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int) -> bytes:
    return struct.pack(
        "!BBHIIIIII",
        0x80,
        SR,
        6,
        ssrc,
        ntp >> 32,
        ntp & 0xFFFFFFFF,
        rtp_ts & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255
    packets_lost: int  # cumulative, 24-bit signed
    highest_seq: int  # extended
    jitter: int
    lsr: int
    dlsr: int


def _pack_block(b: ReportBlock) -> bytes:
    lost = b.packets_lost & 0xFFFFFF
    return struct.pack(
        "!IIIIII",
        b.ssrc,
        (b.fraction_lost & 0xFF) << 24 | lost,
        b.highest_seq & 0xFFFFFFFF,
        b.jitter & 0xFFFFFFFF,
        b.lsr & 0xFFFFFFFF,
        b.dlsr & 0xFFFFFFFF,
    )


def build_rr(ssrc: int, blocks: list[ReportBlock]) -> bytes:
    blocks = blocks[:31]
    body = b"".join(_pack_block(b) for b in blocks)
    return struct.pack("!BBHI", 0x80 | len(blocks), RR, 1 + 6 * len(blocks), ssrc) + body


def build_xr_dlrr(ssrc: int, items: list[tuple[int, int, int]]) -> bytes:
    """An extended report (RFC 3611) with one DLRR block answering receivers' reference times:
    ``items`` are (receiver SSRC, middle 32 bits of its RRTR's NTP time, delay since it arrived
    in 1/65536 s). A receive-only peer (a browser that only watches) has no other way to learn its
    round-trip time, and without one a browser waits 100 ms before it asks for a lost packet again."""
    block = struct.pack("!BBH", XR_DLRR, 0, 3 * len(items)) + b"".join(
        struct.pack("!III", r & 0xFFFFFFFF, lrr & 0xFFFFFFFF, min(dlrr, 0xFFFFFFFF)) for r, lrr, dlrr in items)
    return struct.pack("!BBHI", 0x80, XR, (8 + len(block)) // 4 - 1, ssrc) + block


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return struct.pack("!BBHII", 0x80 | FMT_PLI, PSFB, 2, sender_ssrc, media_ssrc)


def build_fir(sender_ssrc: int, media_ssrc: int, seq_nr: int) -> bytes:
    return struct.pack(
        "!BBHIIIBBH", 0x80 | FMT_FIR, PSFB, 4, sender_ssrc, 0, media_ssrc, seq_nr & 0xFF, 0, 0
    )


def build_nack(sender_ssrc: int, media_ssrc: int, seqs: list[int]) -> bytes:
    """Generic NACK (RFC 4585): packs sequence numbers into PID + bitmask pairs."""
    items: list[tuple[int, int]] = []
    for seq in sorted(set(s & 0xFFFF for s in seqs)):
        if items and 0 < (seq - items[-1][0]) & 0xFFFF <= 16:
            pid, mask = items[-1]
            items[-1] = (pid, mask | 1 << (((seq - pid) & 0xFFFF) - 1))
        else:
            items.append((seq, 0))
    fci = b"".join(struct.pack("!HH", pid, mask) for pid, mask in items)
    return struct.pack("!BBHII", 0x80 | FMT_NACK, RTPFB, 2 + len(items), sender_ssrc, media_ssrc) + fci


def build_twcc(sender_ssrc: int, media_ssrc: int, base_seq: int, feedback_count: int,
               arrivals: list[int | None]) -> bytes:
    """A transport-cc feedback packet for ``arrivals`` (µs on our clock, or None: not
    received) of the packets numbered from ``base_seq``; two-bit status vectors only. For
    tests and the load-test bots: the SFU itself receives these, it does not send them."""
    first = next((a for a in arrivals if a is not None), 0)
    ref = first // 64000
    symbols: list[int] = []
    deltas = b""
    at = ref * 64000
    for a in arrivals:
        if a is None:
            symbols.append(0)
            continue
        delta = (a - at) // 250
        if 0 <= delta <= 255:
            symbols.append(1)
            deltas += bytes((delta,))
        else:
            delta = max(-32768, min(32767, delta))
            symbols.append(2)
            deltas += struct.pack("!h", delta)
        at += delta * 250
    chunks = b""
    for i in range(0, len(symbols), 7):
        part = symbols[i:i + 7] + [0] * (7 - len(symbols[i:i + 7]))
        word = 0xC000
        for j, sym in enumerate(part):
            word |= sym << (12 - 2 * j)
        chunks += struct.pack("!H", word)
    fci = struct.pack("!HHI", base_seq & 0xFFFF, len(arrivals), ((ref & 0xFFFFFF) << 8) | (feedback_count & 0xFF))
    body = struct.pack("!II", sender_ssrc, media_ssrc) + fci + chunks + deltas
    body += bytes(-len(body) % 4)
    return struct.pack("!BBH", 0x80 | FMT_TWCC, RTPFB, len(body) // 4) + body


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    exp = 0
    mantissa = bitrate
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exp += 1
    fci = b"REMB" + struct.pack("!B", len(ssrcs)) + (
        (exp << 18 | mantissa).to_bytes(3, "big")
    ) + b"".join(struct.pack("!I", s) for s in ssrcs)
    length = 2 + len(fci) // 4
    return struct.pack("!BBHII", 0x80 | FMT_AFB, PSFB, length, sender_ssrc, 0) + fci


# --- parser ---------------------------------------------------------------------------


@dataclass(slots=True)
class SenderReport:
    ssrc: int
    ntp: int
    rtp_ts: int
    packets: int
    octets: int
    blocks: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class ReceiverReport:
    ssrc: int
    blocks: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class Nack:
    sender_ssrc: int
    media_ssrc: int
    seqs: list[int]


@dataclass(slots=True)
class KeyframeRequest:  # PLI or FIR
    sender_ssrc: int
    media_ssrc: int
    fir: bool


@dataclass(slots=True)
class Remb:
    sender_ssrc: int
    bitrate: int
    ssrcs: list[int]


@dataclass(slots=True)
class TransportFeedback:
    """Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
    extensions-01, RTPFB FMT 15): for each transport-wide sequence number from ``base_seq``
    on, when it arrived (µs on the receiver's clock) or None if it has not."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    feedback_count: int
    packets: list[tuple[int, int | None]]  # (16-bit sequence number, arrival µs or None)


@dataclass(slots=True)
class ReferenceTime:
    """An extended report's receiver reference time block (RFC 3611 section 4.4): the
    receiver's wall clock when it sent the report, for a DLRR answer."""

    ssrc: int
    ntp: int


RtcpRecord = SenderReport | ReceiverReport | Nack | KeyframeRequest | Remb | TransportFeedback | ReferenceTime

TWCC_MAX_STATUS = 8192  # a feedback never covers more packets than the sender remembers


def _twcc(data: bytes, pos: int, end: int, sender: int, media: int) -> TransportFeedback:
    """The FCI of one transport-cc feedback packet, from ``pos`` (after the media SSRC)."""
    if end - pos < 8:
        raise RtcpError("transport-cc feedback truncated")
    base, count, ref_word = struct.unpack_from("!HHI", data, pos)
    if count > TWCC_MAX_STATUS:
        raise RtcpError("transport-cc feedback covers too many packets")
    ref = ref_word >> 8
    if ref & 0x800000:
        ref -= 0x1000000  # signed, in units of 64 ms
    fb_count = ref_word & 0xFF
    pos += 8
    symbols: list[int] = []
    while len(symbols) < count:
        if pos + 2 > end:
            raise RtcpError("transport-cc packet chunks truncated")
        (chunk,) = struct.unpack_from("!H", data, pos)
        pos += 2
        if not chunk & 0x8000:  # run length: one symbol, repeated
            run = min(chunk & 0x1FFF, count - len(symbols))
            symbols.extend([(chunk >> 13) & 0x3] * run)
        elif not chunk & 0x4000:  # status vector, 14 one-bit symbols
            symbols.extend((chunk >> (13 - i)) & 0x1 for i in range(14))
        else:  # status vector, 7 two-bit symbols
            symbols.extend((chunk >> (12 - 2 * i)) & 0x3 for i in range(7))
    del symbols[count:]
    at = ref * 64000
    packets: list[tuple[int, int | None]] = []
    for i, symbol in enumerate(symbols):
        seq = (base + i) & 0xFFFF
        if symbol == 0:
            packets.append((seq, None))
            continue
        if symbol == 1:
            if pos + 1 > end:
                raise RtcpError("transport-cc receive deltas truncated")
            delta = data[pos]
            pos += 1
        elif symbol == 2:
            if pos + 2 > end:
                raise RtcpError("transport-cc receive deltas truncated")
            (delta,) = struct.unpack_from("!h", data, pos)
            pos += 2
        else:
            raise RtcpError("transport-cc status symbol 3 is reserved")
        at += delta * 250
        packets.append((seq, at))
    return TransportFeedback(sender, media, base, fb_count, packets)


def _blocks(data: bytes, pos: int, count: int, end: int) -> list[ReportBlock]:
    out = []
    for _ in range(count):
        if pos + 24 > end:
            raise RtcpError("report block truncated")
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        out.append(ReportBlock(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr))
        pos += 24
    return out


def parse(data: bytes) -> Iterator[RtcpRecord]:
    """Walk a (compound) RTCP packet; skip types the SFU does not use."""
    pos = 0
    n = len(data)
    if n < 4:
        raise RtcpError("RTCP packet shorter than 4 bytes")
    while pos + 4 <= n:
        b0, pt, length = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise RtcpError("RTCP version is not 2")
        end = pos + 4 * (length + 1)
        if end > n:
            raise RtcpError("RTCP packet length exceeds the datagram")
        count = b0 & 0x1F
        if pt == SR:
            if end - pos < 28:
                raise RtcpError("SR truncated")
            ssrc, hi, lo, rtp_ts, packets, octets = struct.unpack_from("!IIIIII", data, pos + 4)
            yield SenderReport(ssrc, hi << 32 | lo, rtp_ts, packets, octets,
                               _blocks(data, pos + 28, count, end))
        elif pt == RR:
            if end - pos < 8:
                raise RtcpError("RR truncated")
            (ssrc,) = struct.unpack_from("!I", data, pos + 4)
            yield ReceiverReport(ssrc, _blocks(data, pos + 8, count, end))
        elif pt in (RTPFB, PSFB):
            if end - pos < 12:
                raise RtcpError("feedback packet truncated")
            sender, media = struct.unpack_from("!II", data, pos + 4)
            if pt == RTPFB and count == FMT_TWCC:
                yield _twcc(data, pos + 12, end, sender, media)
            elif pt == RTPFB and count == FMT_NACK:
                seqs: list[int] = []
                for p in range(pos + 12, end - 3, 4):
                    pid, mask = struct.unpack_from("!HH", data, p)
                    seqs.append(pid)
                    for bit in range(16):
                        if mask >> bit & 1:
                            seqs.append((pid + bit + 1) & 0xFFFF)
                yield Nack(sender, media, seqs)
            elif pt == PSFB and count == FMT_PLI:
                yield KeyframeRequest(sender, media, fir=False)
            elif pt == PSFB and count == FMT_FIR:
                for p in range(pos + 12, end - 7, 8):
                    (fir_ssrc,) = struct.unpack_from("!I", data, p)
                    yield KeyframeRequest(sender, fir_ssrc, fir=True)
            elif pt == PSFB and count == FMT_AFB and end - pos >= 20 and data[pos + 12:pos + 16] == b"REMB":
                num = data[pos + 16]
                br = int.from_bytes(data[pos + 17:pos + 20], "big")
                bitrate = (br & 0x3FFFF) << (br >> 18)
                ssrcs = [
                    struct.unpack_from("!I", data, pos + 20 + 4 * i)[0]
                    for i in range(num)
                    if pos + 24 + 4 * i <= end
                ]
                yield Remb(sender, bitrate, ssrcs)
        elif pt == XR:
            if end - pos < 8:
                raise RtcpError("XR truncated")
            (ssrc,) = struct.unpack_from("!I", data, pos + 4)
            p = pos + 8
            while p + 4 <= end:
                block_type, _, words = struct.unpack_from("!BBH", data, p)
                block_end = p + 4 + 4 * words
                if block_end > end:
                    raise RtcpError("XR block length exceeds the packet")
                if block_type == XR_RRTR:
                    if words != 2:
                        raise RtcpError("XR receiver reference time block is not 8 bytes")
                    hi, lo = struct.unpack_from("!II", data, p + 4)
                    yield ReferenceTime(ssrc, hi << 32 | lo)
                p = block_end
        pos = end
