"""sfu/rtcp.py: builders round-trip through the parser; malformed input raises RtcpError only."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu import rtcp
from sfu.rtcp import (
    NTP_EPOCH_OFFSET,
    KeyframeRequest,
    Nack,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpError,
    SenderReport,
    build_fir,
    build_nack,
    build_pli,
    build_remb,
    build_rr,
    build_sr,
    ntp_middle,
    ntp_now,
    parse,
)


def only(data: bytes) -> object:
    records = list(parse(data))
    assert len(records) == 1, records
    return records[0]


def check_length_field(data: bytes) -> None:
    """The 16-bit length of every packet is its size in 32-bit words minus one."""
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from("!H", data, pos + 2)
        assert data[pos] >> 6 == 2
        pos += 4 * (length + 1)
    assert pos == len(data)


# --- SR / RR --------------------------------------------------------------------------


def test_sender_report_round_trip() -> None:
    ntp = (3_900_000_000 << 32) | 0x89ABCDEF
    data = build_sr(0xCAFEBABE, ntp, 123456789, 1000, 1_200_000)
    assert len(data) == 28
    check_length_field(data)
    sr = only(data)
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.ntp, sr.rtp_ts, sr.packets, sr.octets) == (
        0xCAFEBABE, ntp, 123456789, 1000, 1_200_000,
    )  # fmt: skip
    assert sr.blocks == []


def test_sender_report_wraps_counters_to_32_bits() -> None:
    sr = only(build_sr(1, 0, (1 << 32) + 5, (1 << 32) + 6, (1 << 32) + 7))
    assert isinstance(sr, SenderReport)
    assert (sr.rtp_ts, sr.packets, sr.octets) == (5, 6, 7)


def block(ssrc: int = 0x01020304, lost: int = 7, fraction: int = 25) -> ReportBlock:
    return ReportBlock(
        ssrc=ssrc,
        fraction_lost=fraction,
        packets_lost=lost,
        highest_seq=0x0001FFFF,
        jitter=321,
        lsr=0x12345678,
        dlsr=65536,
    )


def test_receiver_report_round_trip() -> None:
    blocks = [block(1, 0, 0), block(2, 100, 255), block(3, 0x7FFFFF, 1)]
    data = build_rr(0xAABBCCDD, blocks)
    check_length_field(data)
    rr = only(data)
    assert isinstance(rr, ReceiverReport)
    assert rr.ssrc == 0xAABBCCDD
    assert rr.blocks == blocks


def test_receiver_report_without_blocks() -> None:
    data = build_rr(5, [])
    assert len(data) == 8
    rr = only(data)
    assert rr == ReceiverReport(5, [])


@pytest.mark.parametrize("lost", [-1, -2, -1000, -0x800000])
def test_negative_cumulative_loss_round_trips(lost: int) -> None:
    rr = only(build_rr(9, [block(lost=lost)]))
    assert isinstance(rr, ReceiverReport)
    assert rr.blocks[0].packets_lost == lost


def test_receiver_report_caps_at_31_blocks() -> None:
    data = build_rr(1, [block(ssrc=i) for i in range(40)])
    check_length_field(data)
    rr = only(data)
    assert isinstance(rr, ReceiverReport)
    assert [b.ssrc for b in rr.blocks] == list(range(31))


@given(
    st.lists(
        st.builds(
            ReportBlock,
            ssrc=st.integers(0, 2**32 - 1),
            fraction_lost=st.integers(0, 255),
            packets_lost=st.integers(-0x800000, 0x7FFFFF),
            highest_seq=st.integers(0, 2**32 - 1),
            jitter=st.integers(0, 2**32 - 1),
            lsr=st.integers(0, 2**32 - 1),
            dlsr=st.integers(0, 2**32 - 1),
        ),
        max_size=31,
    )
)
@settings(max_examples=30, deadline=None)
def test_receiver_report_round_trip_property(blocks: list[ReportBlock]) -> None:
    rr = only(build_rr(0x1234, blocks))
    assert isinstance(rr, ReceiverReport)
    assert rr.blocks == blocks


def test_sender_report_with_report_blocks_is_parsed() -> None:
    header = build_sr(7, 1 << 32, 2, 3, 4)
    data = bytes([header[0] | 1, header[1]]) + struct.pack("!H", 12) + header[4:]
    data += struct.pack("!I", 99) + struct.pack("!BBHIIII", 10, 0xFF, 0xFFFE, 5, 6, 7, 8)
    sr = only(data)
    assert isinstance(sr, SenderReport)
    assert sr.blocks == [ReportBlock(99, 10, -2, 5, 6, 7, 8)]


def test_ntp_helpers() -> None:
    before = time.time()
    ntp = ntp_now()
    after = time.time()
    seconds = (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 2**32
    assert before - 0.01 <= seconds <= after + 0.01
    assert ntp_middle(0x1122334455667788) == 0x33445566


# --- feedback -------------------------------------------------------------------------


def test_pli_round_trip() -> None:
    data = build_pli(0x11111111, 0x22222222)
    assert len(data) == 12
    check_length_field(data)
    assert only(data) == KeyframeRequest(0x11111111, 0x22222222, fir=False)


def test_fir_round_trip() -> None:
    data = build_fir(0x11111111, 0x33333333, 300)
    assert len(data) == 20
    check_length_field(data)
    assert data[16] == 300 & 0xFF  # command sequence number
    assert only(data) == KeyframeRequest(0x11111111, 0x33333333, fir=True)


def nack_set(data: bytes) -> set[int]:
    record = only(data)
    assert isinstance(record, Nack)
    return set(record.seqs)


def test_nack_single() -> None:
    data = build_nack(1, 2, [100])
    check_length_field(data)
    record = only(data)
    assert record == Nack(1, 2, [100])


def test_nack_bitmask_packing() -> None:
    seqs = [100, 101, 103, 116]  # all within 16 of the PID: one FCI entry
    data = build_nack(1, 2, seqs)
    assert len(data) == 12 + 4
    pid, mask = struct.unpack_from("!HH", data, 12)
    assert pid == 100
    assert mask == (1 << 0) | (1 << 2) | (1 << 15)
    assert nack_set(data) == set(seqs)


def test_nack_splits_into_several_items() -> None:
    seqs = [100, 117, 118, 200]
    data = build_nack(1, 2, seqs)
    check_length_field(data)
    assert len(data) == 12 + 4 * 3  # 100 | 117 (+118) | 200
    assert nack_set(data) == set(seqs)


def test_nack_duplicates_and_unsorted() -> None:
    data = build_nack(1, 2, [5, 3, 5, 4, 3])
    assert nack_set(data) == {3, 4, 5}
    assert len(data) == 12 + 4


def test_nack_wraps_around() -> None:
    seqs = [65530, 65533, 65535, 0, 1, 7]
    data = build_nack(1, 2, seqs)
    check_length_field(data)
    assert nack_set(data) == set(seqs)


def test_nack_masks_to_16_bits() -> None:
    assert nack_set(build_nack(1, 2, [65536 + 3, 65536 * 2 + 4])) == {3, 4}


def test_nack_empty() -> None:
    data = build_nack(1, 2, [])
    check_length_field(data)
    assert nack_set(data) == set()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), max_size=200))
def test_nack_round_trip_property(seqs: list[int]) -> None:
    data = build_nack(0xA, 0xB, seqs)
    check_length_field(data)
    record = only(data)
    assert isinstance(record, Nack)
    assert (record.sender_ssrc, record.media_ssrc) == (0xA, 0xB)
    assert set(record.seqs) == set(seqs)
    assert len(record.seqs) == len(set(seqs))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 0xFFFF), st.lists(st.integers(0, 40), max_size=30))
def test_nack_round_trip_near_wrap(base: int, deltas: list[int]) -> None:
    seqs = [(base + d) & 0xFFFF for d in deltas]
    assert nack_set(build_nack(1, 2, seqs)) == set(seqs)


# --- REMB -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bitrate", [0, 1, 1000, 0x3FFFF, 0x40000, 300_000, 2_500_000, 123_456_789, 10**10]
)
def test_remb_bitrate_precision(bitrate: int) -> None:
    data = build_remb(0x42, bitrate, [0x1111, 0x2222])
    check_length_field(data)
    record = only(data)
    assert isinstance(record, Remb)
    assert record.sender_ssrc == 0x42
    assert record.ssrcs == [0x1111, 0x2222]
    assert record.bitrate <= bitrate
    assert abs(record.bitrate - bitrate) <= bitrate * 0.001


def test_remb_small_bitrates_are_exact() -> None:
    for bitrate in (0, 1, 1000, 0x3FFFF):
        record = only(build_remb(1, bitrate, []))
        assert isinstance(record, Remb)
        assert record.bitrate == bitrate


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**40), st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_remb_round_trip_property(bitrate: int, ssrcs: list[int]) -> None:
    record = only(build_remb(7, bitrate, ssrcs))
    assert isinstance(record, Remb)
    assert record.ssrcs == ssrcs
    assert abs(record.bitrate - bitrate) <= bitrate * 0.001


def test_remb_wire_format() -> None:
    data = build_remb(0x42, 2_500_000, [0xABCDEF01])
    assert data[0] == 0x8F  # V=2, FMT=15
    assert data[1] == 206
    assert data[8:12] == b"\x00\x00\x00\x00"  # media SSRC is 0
    assert data[12:16] == b"REMB"
    assert data[16] == 1


# --- compound -------------------------------------------------------------------------


def test_compound_sr_and_remb() -> None:
    sr = build_sr(1, 5 << 32, 10, 20, 30)
    remb = build_remb(1, 1_000_000, [2, 3])
    records = list(parse(sr + remb))
    assert len(records) == 2
    assert isinstance(records[0], SenderReport) and records[0].ssrc == 1
    assert isinstance(records[1], Remb) and records[1].ssrcs == [2, 3]


def test_compound_rr_nack_pli_fir() -> None:
    data = (
        build_rr(1, [block()])
        + build_nack(1, 2, [10, 12])
        + build_pli(1, 2)
        + build_fir(1, 3, 0)
    )
    records = list(parse(data))
    assert [type(r) for r in records] == [ReceiverReport, Nack, KeyframeRequest, KeyframeRequest]
    assert isinstance(records[1], Nack) and set(records[1].seqs) == {10, 12}
    assert records[2] == KeyframeRequest(1, 2, fir=False)
    assert records[3] == KeyframeRequest(1, 3, fir=True)


def test_unknown_packet_types_are_skipped() -> None:
    sdes = struct.pack("!BBH", 0x81, 202, 2) + struct.pack("!I", 1) + b"\x01\x01a\x00"
    bye = struct.pack("!BBHI", 0x81, 203, 1, 1)
    afb_other = struct.pack("!BBHII", 0x8F, 206, 3, 1, 0) + b"XXXX"
    data = sdes + bye + afb_other + build_pli(4, 5)
    assert list(parse(data)) == [KeyframeRequest(4, 5, fir=False)]


# --- malformed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc8\x00",
        b"\x00\xc8\x00\x06" + b"\x00" * 24,  # version 0
        build_sr(1, 0, 0, 0, 0)[:-1],  # length field exceeds the datagram
        struct.pack("!BBH", 0x80, 200, 0),  # SR with no body
        struct.pack("!BBH", 0x80, 201, 0),  # RR with no SSRC
        struct.pack("!BBHI", 0x81, 201, 1, 1),  # RR announcing a block it lacks
        struct.pack("!BBHI", 0x81, 206, 1, 1),  # PLI without media SSRC
        build_pli(1, 2) + b"\x40\xce\x00\x02",  # second packet version 1
    ],
    ids=lambda d: d.hex()[:20] or "empty",
)
def test_malformed_raises_rtcp_error(data: bytes) -> None:
    with pytest.raises(RtcpError):
        list(parse(data))


def test_rtcp_error_is_value_error() -> None:
    assert issubclass(RtcpError, ValueError)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    try:
        list(parse(data))
    except RtcpError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 31),
            st.sampled_from([200, 201, 202, 203, 205, 206]),
            st.integers(0, 12),
            st.binary(max_size=60),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_structured_packets(packets: list[tuple[int, int, int, bytes]]) -> None:
    """Version-2 packets with plausible types and random lengths/counts/bodies."""
    data = b"".join(
        struct.pack("!BBH", 0x80 | count, pt, length) + body for count, pt, length, body in packets
    )
    try:
        records = list(parse(data))
    except RtcpError:
        return
    for r in records:
        assert isinstance(r, SenderReport | ReceiverReport | Nack | KeyframeRequest | Remb)


def test_transport_feedback_round_trip_with_losses_large_deltas_and_wrap() -> None:
    arrivals: list[int | None] = [1_000_000, None, 1_000_500, 1_100_000, None, 900_000, 2_000_000, 2_000_250, None]
    packet = rtcp.build_twcc(1, 2, 65530, 7, arrivals)
    (record,) = list(rtcp.parse(packet))
    assert isinstance(record, rtcp.TransportFeedback)
    assert record.base_seq == 65530 and record.feedback_count == 7
    assert [s for s, _ in record.packets] == [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2]
    # arrival times to the 250 µs resolution, relative to the first (the reference is 64 ms units)
    got = [a for _, a in record.packets]
    first = got[0]
    assert first is not None
    assert [None if a is None else a - first for a in got] == [
        None if a is None else a - 1_000_000 for a in arrivals]


def test_transport_feedback_run_length_and_one_bit_chunks() -> None:
    # base 10, 20 packets: a run of 16 "small delta", then a one-bit vector (1 0 1 1 ...)
    fci = struct.pack("!HHI", 10, 20, (5 << 8) | 1)
    fci += struct.pack("!H", (1 << 13) | 16)  # run length chunk: symbol 1, 16 times
    fci += struct.pack("!H", 0x8000 | 0b10110000000000)  # 14 one-bit symbols
    fci += bytes([4] * 16 + [4, 4, 4])  # 19 one-byte deltas (1 ms each)
    body = struct.pack("!II", 1, 2) + fci
    body += bytes(-len(body) % 4)
    packet = struct.pack("!BBH", 0x80 | 15, 205, len(body) // 4) + body
    (record,) = list(rtcp.parse(packet))
    assert isinstance(record, rtcp.TransportFeedback)
    assert len(record.packets) == 20
    received = [s for s, a in record.packets if a is not None]
    assert received == list(range(10, 26)) + [26, 28, 29]
    assert record.packets[0][1] == 5 * 64000 + 1000


@pytest.mark.parametrize("cut", [14, 18, 20, 22, 25])
def test_truncated_transport_feedback_is_an_error(cut: int) -> None:
    packet = rtcp.build_twcc(1, 2, 0, 0, [1_000_000 + 300 * i for i in range(20)])
    broken = bytearray(packet[:cut])
    broken[2:4] = struct.pack("!H", (len(broken) + 3) // 4 - 1)
    broken += bytes(-len(broken) % 4)
    with pytest.raises(rtcp.RtcpError):
        list(rtcp.parse(bytes(broken)))


def _xr(ssrc: int, blocks: bytes) -> bytes:
    return struct.pack("!BBHI", 0x80, 207, (8 + len(blocks)) // 4 - 1, ssrc) + blocks


def test_extended_report_reference_time_is_parsed_and_other_blocks_skipped() -> None:
    ntp = 0x1122334455667788
    dlrr = struct.pack("!BBH", 5, 0, 3) + struct.pack("!III", 1, 2, 3)  # a DLRR block: not ours to read
    rrtr = struct.pack("!BBHII", 4, 0, 2, ntp >> 32, ntp & 0xFFFFFFFF)
    records = list(rtcp.parse(_xr(0xABCD, dlrr + rrtr)))
    assert records == [rtcp.ReferenceTime(0xABCD, ntp)]


def test_extended_report_block_past_its_packet_is_an_error() -> None:
    bad = _xr(1, struct.pack("!BBHII", 4, 0, 2, 0, 0))[:-4]  # the block says 8 bytes, 4 are there
    bad = bad[:2] + struct.pack("!H", len(bad) // 4 - 1) + bad[4:]
    with pytest.raises(RtcpError):
        list(rtcp.parse(bad))
    with pytest.raises(RtcpError):  # a reference time block of the wrong size
        list(rtcp.parse(_xr(1, struct.pack("!BBHI", 4, 0, 1, 0))))


def test_dlrr_answer_wire_format() -> None:
    pkt = rtcp.build_xr_dlrr(0x01020304, [(0xAABBCCDD, 0x55667788, 655)])
    assert len(pkt) == 24
    b0, pt, length, ssrc = struct.unpack_from("!BBHI", pkt)
    assert (b0, pt, length, ssrc) == (0x80, 207, 5, 0x01020304)
    assert struct.unpack_from("!BBHIII", pkt, 8) == (5, 0, 3, 0xAABBCCDD, 0x55667788, 655)
    assert list(rtcp.parse(pkt)) == []  # (a DLRR is for the receiver of the reference time)
