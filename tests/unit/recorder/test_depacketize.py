from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.depacketize import (
    H264Depacketizer,
    OpusDepacketizer,
    RtpError,
    VP8Depacketizer,
    build_rtp,
    build_sender_report,
    depacketizer_for,
    h264_sps_size,
    is_rtcp,
    parse_rtp,
    parse_sender_reports,
    parse_vp8_descriptor,
)
from recorder.packetize import H264Packetizer, OpusPacketizer, VP8Packetizer, split_annexb


def test_rtp_header_roundtrip_with_extensions_csrcs_padding() -> None:
    data = build_rtp(
        96,
        65535,
        0xFFFFFFF0,
        0x12345678,
        b"payload",
        marker=True,
        extensions={1: b"\x01", 3: b"abc"},
        padding=4,
        csrcs=(7, 8),
    )
    p = parse_rtp(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker) == (
        96,
        65535,
        0xFFFFFFF0,
        0x12345678,
        True,
    )
    assert p.csrcs == (7, 8)
    assert p.extensions == {1: b"\x01", 3: b"abc"}
    assert p.payload == b"payload"
    assert p.padding == 4


def test_two_byte_header_extension() -> None:
    body = bytes([5, 2, 0xAA, 0xBB, 0, 9, 0]) + b"\x00"  # id 5 len 2, padding, id 9 len 0
    header = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0x1000, 2)
    p = parse_rtp(header + body + b"xyz")
    assert p.extensions == {5: b"\xaa\xbb", 9: b""}
    assert p.payload == b"xyz"


def test_other_extension_profile_is_skipped() -> None:
    header = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0xABCD, 1) + b"1234"
    p = parse_rtp(header + b"pl")
    assert p.extension_profile == 0xABCD and p.payload == b"pl" and p.extensions == {}


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\x80\x60", "too short"),
        (b"\x40" + bytes(11), "version"),
        (b"\x83" + bytes(11), "CSRC"),
        (struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0xBEDE, 4), "extension"),
        (struct.pack("!BBHII", 0xA0, 96, 1, 2, 3) + b"\x00\x00\x09", "padding"),
        (struct.pack("!BBHII", 0x80, 200, 1, 2, 3), "RTCP"),
    ],
)
def test_bad_rtp_is_rejected_clearly(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        parse_rtp(data)


@given(st.binary(max_size=64))
def test_parse_rtp_never_raises_anything_but_rtperror(data: bytes) -> None:
    try:
        parse_rtp(data)
    except RtpError:
        pass


@given(st.binary(max_size=64))
def test_depacketizers_survive_garbage(data: bytes) -> None:
    packet_bytes = build_rtp(96, 1, 1, 1, data, marker=True)
    for codec in ("vp8", "opus", "h264"):
        depack = depacketizer_for(codec)
        try:
            depack.push(parse_rtp(packet_bytes))
        except RtpError:
            pass


def test_sender_report_roundtrip_in_compound_packet() -> None:
    rr = struct.pack("!BBHI", 0x80, 201, 1, 5)
    sr = build_sender_report(0xABC, 1_700_000_000.25, 123456, 10, 2000)
    assert is_rtcp(sr) and not is_rtcp(build_rtp(96, 1, 1, 1, b"x"))
    (report,) = parse_sender_reports(rr + sr)
    assert report.ssrc == 0xABC and report.rtp_timestamp == 123456
    assert abs(report.unix_seconds - 1_700_000_000.25) < 1e-6
    with pytest.raises(RtpError):
        parse_sender_reports(sr[:-4] + b"")  # length says more than present


def _vp8_keyframe(size: int, width: int = 320, height: int = 240) -> bytes:
    tag = bytes([0x10, 0x02, 0x00])  # keyframe (bit 0 = 0), show_frame
    return tag + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + bytes(size)


def test_vp8_descriptor_variants() -> None:
    assert parse_vp8_descriptor(b"\x10abc") == (1, True, 0)
    assert parse_vp8_descriptor(b"\x90\x80\x05x") == (3, True, 0)  # 7-bit picture id
    assert parse_vp8_descriptor(b"\x80\xe0\x81\x02\x03\x04x") == (6, False, 0)  # M, L, T
    with pytest.raises(RtpError):
        parse_vp8_descriptor(b"\x80")


def test_vp8_roundtrip_many_packets_and_keyframe_size() -> None:
    pk = VP8Packetizer(max_payload=100)
    depack = VP8Depacketizer()
    key = _vp8_keyframe(1000)
    inter = b"\x01" + bytes(500)
    frames = []
    for data, ts in ((key, 1000), (inter, 4000)):
        for raw in pk.packetize(data, ts):
            frames += depack.push(parse_rtp(raw))
    assert [f.data for f in frames] == [key, inter]
    assert frames[0].keyframe and (frames[0].width, frames[0].height) == (320, 240)
    assert not frames[1].keyframe and frames[1].timestamp == 4000


def test_vp8_frame_missing_its_start_is_dropped() -> None:
    pk = VP8Packetizer(max_payload=100)
    depack = VP8Depacketizer()
    packets = pk.packetize(_vp8_keyframe(500), 10)
    out = []
    for raw in packets[1:]:
        out += depack.push(parse_rtp(raw))
    assert out == []


def test_opus_one_packet_one_frame() -> None:
    pk = OpusPacketizer()
    (raw,) = pk.packetize(b"\xfc\x01\x02", 960)
    (frame,) = OpusDepacketizer().push(parse_rtp(raw))
    assert frame.data == b"\xfc\x01\x02" and frame.keyframe and frame.timestamp == 960


# A real SPS (baseline, 320x240) from libx264, and small fake PPS/slices.
SPS_320x240 = bytes.fromhex("6742c00d8c8d40a0fd00f08846a0")
PPS = bytes.fromhex("68ce3c80")


def test_h264_sps_size() -> None:
    assert h264_sps_size(SPS_320x240) == (320, 240)
    with pytest.raises(RtpError):
        h264_sps_size(b"\x67")


def test_h264_stap_a_fu_a_roundtrip_and_parameter_set_reuse() -> None:
    idr = bytes([0x65]) + bytes(range(256)) * 12  # big: FU-A
    non_idr = bytes([0x41]) + b"\x11" * 50
    start = b"\x00\x00\x00\x01"
    key_au = start + SPS_320x240 + start + PPS + start + idr
    pk = H264Packetizer(max_payload=500)
    depack = H264Depacketizer()
    out = []
    for data, ts in ((key_au, 0), (start + non_idr, 3000), (start + idr, 6000)):
        for raw in pk.packetize(data, ts):
            out += depack.push(parse_rtp(raw))
    assert len(out) == 3
    assert out[0].keyframe and out[0].data == key_au and (out[0].width, out[0].height) == (320, 240)
    assert not out[1].keyframe and split_annexb(out[1].data) == [non_idr]
    # the IDR without SPS/PPS gets the cached ones in front
    assert out[2].keyframe and split_annexb(out[2].data) == [SPS_320x240, PPS, idr]


def test_h264_lost_fu_a_middle_drops_the_access_unit() -> None:
    idr = bytes([0x65]) + bytes(3000)
    pk = H264Packetizer(max_payload=500)
    packets = pk.packetize(b"\x00\x00\x00\x01" + idr, 0)
    depack = H264Depacketizer()
    out = []
    for raw in packets[:2] + packets[3:]:
        out += depack.push(parse_rtp(raw))
    assert out == []


def test_h264_rejects_unsupported_packetization() -> None:
    with pytest.raises(RtpError, match="NAL type 25"):
        H264Depacketizer().push(parse_rtp(build_rtp(102, 1, 1, 1, b"\x19abc", True)))


def test_unknown_codec() -> None:
    with pytest.raises(ValueError, match="VP9"):
        depacketizer_for("VP9")


def test_nack_and_pli_roundtrip() -> None:
    from recorder.depacketize import build_nack, build_pli, parse_nack, parse_pli

    seqs = [65534, 65535, 0, 3, 17, 18, 40]
    packet = build_nack(1, 0xABCDEF, seqs) + build_pli(1, 0xABCDEF)
    assert sorted(parse_nack(packet)) == sorted(seqs)
    assert parse_pli(packet) == [0xABCDEF]
