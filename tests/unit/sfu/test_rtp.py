"""sfu/rtp.py: header parsing, header extensions, keyframe detection, sequence comparison."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.rtp import (
    RtpError,
    audio_level,
    find_extension,
    h264_is_keyframe,
    keyframe_detector,
    parse_header,
    seq_newer,
    vp8_is_keyframe,
)


def rtp(
    *,
    pt: int = 96,
    marker: bool = False,
    seq: int = 1,
    ts: int = 1000,
    ssrc: int = 0x11223344,
    csrcs: tuple[int, ...] = (),
    ext: tuple[int, bytes] | None = None,
    payload: bytes = b"\x01\x02\x03",
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | len(csrcs)
    if ext is not None:
        b0 |= 0x10
    if padding:
        b0 |= 0x20
    out = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    out += b"".join(struct.pack("!I", c) for c in csrcs)
    if ext is not None:
        profile, body = ext
        assert len(body) % 4 == 0
        out += struct.pack("!HH", profile, len(body) // 4) + body
    out += payload
    if padding:
        out += b"\x00" * (padding - 1) + bytes([padding])
    return out


def one_byte_ext(*elements: tuple[int, bytes], pad_between: int = 0) -> tuple[int, bytes]:
    body = b""
    for eid, value in elements:
        body += bytes([eid << 4 | (len(value) - 1)]) + value + b"\x00" * pad_between
    body += b"\x00" * (-len(body) % 4)
    return 0xBEDE, body


def two_byte_ext(*elements: tuple[int, bytes], appbits: int = 0) -> tuple[int, bytes]:
    body = b""
    for eid, value in elements:
        body += bytes([eid, len(value)]) + value
    body += b"\x00" * (-len(body) % 4)
    return 0x1000 | appbits, body


# --- header ---------------------------------------------------------------------------


def test_plain_header_fields() -> None:
    data = rtp(pt=111, marker=True, seq=0xFFFF, ts=0xFFFFFFFF, ssrc=0xDEADBEEF, payload=b"abc")
    h = parse_header(data)
    assert h.payload_type == 111
    assert h.marker is True
    assert h.sequence == 0xFFFF
    assert h.timestamp == 0xFFFFFFFF
    assert h.ssrc == 0xDEADBEEF
    assert h.payload_offset == 12
    assert h.payload_end == len(data)
    assert data[h.payload_offset : h.payload_end] == b"abc"
    assert (h.ext_offset, h.ext_length, h.ext_profile) == (0, 0, 0)


def test_marker_clear() -> None:
    assert parse_header(rtp(marker=False, pt=0)).marker is False
    assert parse_header(rtp(marker=False, pt=0)).payload_type == 0


def test_csrcs_are_skipped() -> None:
    data = rtp(csrcs=(1, 2, 3), payload=b"xyz")
    h = parse_header(data)
    assert h.payload_offset == 12 + 12
    assert data[h.payload_offset : h.payload_end] == b"xyz"


def test_fifteen_csrcs() -> None:
    data = rtp(csrcs=tuple(range(15)), payload=b"p")
    h = parse_header(data)
    assert h.payload_offset == 12 + 60
    assert data[h.payload_offset : h.payload_end] == b"p"


def test_one_byte_extension_block() -> None:
    ext = one_byte_ext((1, b"\x85"), (3, b"\x01\x02\x03"))
    data = rtp(csrcs=(7,), ext=ext, payload=b"PAY")
    h = parse_header(data)
    assert h.ext_profile == 0xBEDE
    assert h.ext_offset == 12 + 4 + 4
    assert h.ext_length == len(ext[1])
    assert h.payload_offset == h.ext_offset + h.ext_length
    assert data[h.payload_offset : h.payload_end] == b"PAY"


def test_two_byte_extension_block() -> None:
    ext = two_byte_ext((1, b"\x10"), (200, b""), (5, b"hello"))
    data = rtp(ext=ext, payload=b"PAY")
    h = parse_header(data)
    assert h.ext_profile == 0x1000
    assert data[h.payload_offset : h.payload_end] == b"PAY"


def test_padding_is_excluded_from_payload() -> None:
    data = rtp(payload=b"abcd", padding=4)
    h = parse_header(data)
    assert h.payload_end == len(data) - 4
    assert data[h.payload_offset : h.payload_end] == b"abcd"


def test_padding_only_packet() -> None:
    data = rtp(payload=b"", padding=1)
    h = parse_header(data)
    assert h.payload_offset == h.payload_end == 12


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        rtp()[:11],
        b"\x00" * 12,  # version 0
        b"\x40" + rtp()[1:],  # version 1
        b"\xc0" + rtp()[1:],  # version 3
        rtp(csrcs=(1, 2))[:16],  # CSRC list truncated
    ],
    ids=lambda d: d.hex()[:16] or "empty",
)
def test_malformed_headers_raise(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_header(data)


def test_csrc_count_beyond_packet_raises() -> None:
    data = bytearray(rtp(payload=b""))
    data[0] |= 0x0F  # 15 CSRCs announced, none present
    with pytest.raises(RtpError):
        parse_header(bytes(data))


def test_extension_header_truncated_raises() -> None:
    data = bytearray(rtp(payload=b""))
    data[0] |= 0x10
    data += b"\xbe"  # 1 of the 4 extension header bytes
    with pytest.raises(RtpError):
        parse_header(bytes(data))


def test_extension_length_beyond_packet_raises() -> None:
    data = rtp(payload=b"") + struct.pack("!HH", 0xBEDE, 10) + b"\x00" * 8
    data = bytes([data[0] | 0x10]) + data[1:]
    with pytest.raises(RtpError):
        parse_header(data)


def test_zero_padding_length_raises() -> None:
    data = bytearray(rtp(payload=b"abc\x00"))
    data[0] |= 0x20
    with pytest.raises(RtpError):
        parse_header(bytes(data))


def test_padding_longer_than_payload_raises() -> None:
    data = bytearray(rtp(payload=b"ab\x09"))
    data[0] |= 0x20
    with pytest.raises(RtpError):
        parse_header(bytes(data))


def test_padding_eating_extension_raises() -> None:
    ext = one_byte_ext((1, b"\x10"))
    data = bytearray(rtp(ext=ext, payload=b"\x06"))
    data[0] |= 0x20
    with pytest.raises(RtpError):
        parse_header(bytes(data))


def test_rtp_error_is_value_error() -> None:
    assert issubclass(RtpError, ValueError)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_arbitrary_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    try:
        h = parse_header(data)
    except RtpError:
        return
    assert 12 <= h.payload_offset <= h.payload_end <= len(data)
    for ext_id in range(0, 16):
        value = find_extension(data, h, ext_id)
        assert value is None or isinstance(value, bytes)
        level = audio_level(data, h, ext_id)
        assert level is None or 0 <= level <= 127


@settings(max_examples=80, deadline=None)
@given(
    st.binary(min_size=12, max_size=12),
    st.integers(0, 3),
    st.binary(max_size=60),
)
def test_fuzz_version_two_headers_with_random_flags(head: bytes, flags: int, rest: bytes) -> None:
    data = bytes([0x80 | (flags << 4) | (head[0] & 0x0F)]) + head[1:] + rest
    try:
        h = parse_header(data)
    except RtpError:
        return
    assert h.payload_offset <= h.payload_end <= len(data)
    for ext_id in (1, 2, 14, 255):
        find_extension(data, h, ext_id)


# --- header extensions ----------------------------------------------------------------


def test_find_one_byte_extension() -> None:
    data = rtp(ext=one_byte_ext((1, b"\x85"), (3, b"\x01\x02\x03"), (14, b"\xaa\xbb")))
    h = parse_header(data)
    assert find_extension(data, h, 1) == b"\x85"
    assert find_extension(data, h, 3) == b"\x01\x02\x03"
    assert find_extension(data, h, 14) == b"\xaa\xbb"
    assert find_extension(data, h, 2) is None
    assert find_extension(data, h, 0) is None


def test_find_one_byte_extension_across_padding_bytes() -> None:
    data = rtp(ext=one_byte_ext((1, b"\x01"), (2, b"\x02\x02"), pad_between=2))
    h = parse_header(data)
    assert find_extension(data, h, 2) == b"\x02\x02"


def test_one_byte_id_15_stops_the_walk() -> None:
    body = bytes([0xF0]) + bytes([0x20, 0x42]) + b"\x00"
    data = rtp(ext=(0xBEDE, body))
    h = parse_header(data)
    assert find_extension(data, h, 2) is None


def test_sixteen_byte_one_byte_element() -> None:
    value = bytes(range(16))
    data = rtp(ext=one_byte_ext((5, value)))
    h = parse_header(data)
    assert find_extension(data, h, 5) == value


def test_find_two_byte_extension() -> None:
    data = rtp(ext=two_byte_ext((1, b"\x10"), (200, b""), (5, b"hello"), appbits=0x7))
    h = parse_header(data)
    assert h.ext_profile == 0x1007
    assert find_extension(data, h, 1) == b"\x10"
    assert find_extension(data, h, 5) == b"hello"
    assert find_extension(data, h, 200) == b""
    assert find_extension(data, h, 6) is None


def test_two_byte_extension_skips_padding() -> None:
    body = b"\x00\x00" + bytes([9, 2]) + b"ok"
    data = rtp(ext=(0x1000, body + b"\x00" * (-len(body) % 4)))
    h = parse_header(data)
    assert find_extension(data, h, 9) == b"ok"


def test_unknown_extension_profile_yields_nothing() -> None:
    data = rtp(ext=(0xABCD, b"\x10\x85\x00\x00"))
    h = parse_header(data)
    assert h.ext_profile == 0xABCD
    assert find_extension(data, h, 1) is None


def test_no_extension_yields_nothing() -> None:
    data = rtp()
    h = parse_header(data)
    assert find_extension(data, h, 1) is None
    assert audio_level(data, h, 1) is None


def test_audio_level_one_byte() -> None:
    # V bit (voice activity) set, level 42
    data = rtp(ext=one_byte_ext((4, b"\x01\x02"), (1, bytes([0x80 | 42]))))
    h = parse_header(data)
    assert audio_level(data, h, 1) == 42
    assert audio_level(data, h, 3) is None


def test_audio_level_silence_and_loudest() -> None:
    for level in (0, 127):
        data = rtp(ext=one_byte_ext((1, bytes([level]))))
        assert audio_level(data, parse_header(data), 1) == level


def test_audio_level_two_byte() -> None:
    data = rtp(ext=two_byte_ext((3, bytes([90]))))
    assert audio_level(data, parse_header(data), 3) == 90


def test_audio_level_empty_value_is_none() -> None:
    data = rtp(ext=two_byte_ext((3, b"")))
    assert audio_level(data, parse_header(data), 3) is None


# --- VP8 (RFC 7741) -------------------------------------------------------------------


def vp8_descriptor(
    *,
    start: bool = True,
    pid: int = 0,
    picture_id: int | None = None,
    long_picture_id: bool = False,
    tl0picidx: int | None = None,
    tid: bool = False,
    keyidx: bool = False,
) -> bytes:
    x = picture_id is not None or tl0picidx is not None or tid or keyidx
    b0 = (0x80 if x else 0) | (0x10 if start else 0) | pid
    out = bytes([b0])
    if not x:
        return out
    ext = (
        (0x80 if picture_id is not None else 0)
        | (0x40 if tl0picidx is not None else 0)
        | (0x20 if tid else 0)
        | (0x10 if keyidx else 0)
    )
    out += bytes([ext])
    if picture_id is not None:
        if long_picture_id:
            out += struct.pack("!H", 0x8000 | picture_id)
        else:
            out += bytes([picture_id & 0x7F])
    if tl0picidx is not None:
        out += bytes([tl0picidx])
    if tid or keyidx:
        out += bytes([0b01_1_00101])  # TID=1, Y=1, KEYIDX=5
    return out


VP8_KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A])  # P bit 0, start code 9d 01 2a
VP8_INTER = bytes([0x31, 0x01, 0x00])  # P bit 1


DESCRIPTOR_VARIANTS = [
    {},
    {"picture_id": 0x55},
    {"picture_id": 0x7F},
    {"picture_id": 0x1234, "long_picture_id": True},
    {"picture_id": 0x7FFF, "long_picture_id": True},
    {"tl0picidx": 0x01},
    {"tl0picidx": 0xFF},
    {"tid": True},
    {"keyidx": True},
    {"picture_id": 0x7FFF, "long_picture_id": True, "tl0picidx": 1, "tid": True},
    {"picture_id": 3, "tl0picidx": 0xFE, "keyidx": True},
    {"picture_id": 0x4321, "long_picture_id": True, "tl0picidx": 9, "tid": True, "keyidx": True},
]


@pytest.mark.parametrize("variant", DESCRIPTOR_VARIANTS)
def test_vp8_keyframe_and_interframe(variant: dict[str, object]) -> None:
    d = vp8_descriptor(**variant)  # type: ignore[arg-type]
    assert vp8_is_keyframe(d + VP8_KEY) is True
    assert vp8_is_keyframe(d + VP8_INTER) is False


def test_vp8_picture_id_with_low_bit_set_is_not_mistaken_for_the_frame_header() -> None:
    # a one-byte picture id of 0x01 and a two-byte one ending in 0x..01 look like P=1 frame
    # headers if the descriptor were skipped wrongly; keyframe must still be detected
    for variant in ({"picture_id": 0x01}, {"picture_id": 0x0101, "long_picture_id": True}):
        d = vp8_descriptor(**variant)  # type: ignore[arg-type]
        assert vp8_is_keyframe(d + VP8_KEY) is True
    # and a picture id with low bit 0 must not make an interframe a keyframe
    for variant in ({"picture_id": 0x02}, {"picture_id": 0x0102, "long_picture_id": True}):
        d = vp8_descriptor(**variant)  # type: ignore[arg-type]
        assert vp8_is_keyframe(d + VP8_INTER) is False


@pytest.mark.parametrize("variant", DESCRIPTOR_VARIANTS)
def test_vp8_non_start_packet_is_never_a_keyframe(variant: dict[str, object]) -> None:
    d = vp8_descriptor(start=False, **variant)  # type: ignore[arg-type]
    assert vp8_is_keyframe(d + VP8_KEY) is False


def test_vp8_start_of_a_later_partition_is_not_a_keyframe() -> None:
    d = vp8_descriptor(pid=1)
    assert vp8_is_keyframe(d + VP8_KEY) is False
    d = vp8_descriptor(pid=7, picture_id=5)
    assert vp8_is_keyframe(d + VP8_KEY) is False


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x10",  # descriptor only
        b"\x90",  # X set, extension byte missing
        b"\x90\x80",  # I set, picture id missing
        b"\x90\x80\x85",  # long picture id, second byte missing, no frame header
        b"\x90\x80\x05",  # short picture id, no frame header
        b"\x90\x40\x01",  # L set, no frame header
        b"\x90\x20\x01",  # T set, no frame header
        b"\x90\xf0\x05\x01\x01",  # everything, no frame header
    ],
)
def test_vp8_truncated_payloads_are_not_keyframes(payload: bytes) -> None:
    assert vp8_is_keyframe(payload) is False


@given(st.binary(max_size=16))
def test_vp8_never_raises(payload: bytes) -> None:
    assert vp8_is_keyframe(payload) in (True, False)


# --- H.264 (RFC 6184) -----------------------------------------------------------------


def nal(nal_type: int, body: bytes = b"\x88\x84") -> bytes:
    return bytes([0x60 | nal_type]) + body


def stap_a(*units: bytes) -> bytes:
    return bytes([0x78]) + b"".join(struct.pack("!H", len(u)) + u for u in units)


def fu_a(inner_type: int, *, start: bool, end: bool = False) -> bytes:
    indicator = 0x60 | 28
    header = (0x80 if start else 0) | (0x40 if end else 0) | inner_type
    return bytes([indicator, header]) + b"\x11\x22"


@pytest.mark.parametrize("nal_type", [5, 7])
def test_h264_single_nal_keyframe(nal_type: int) -> None:
    assert h264_is_keyframe(nal(nal_type)) is True


@pytest.mark.parametrize("nal_type", [1, 6, 8, 9])
def test_h264_single_nal_not_keyframe(nal_type: int) -> None:
    assert h264_is_keyframe(nal(nal_type)) is False


def test_h264_stap_a_with_sps() -> None:
    assert h264_is_keyframe(stap_a(nal(7, b"\x42\x00\x1f"), nal(8, b"\xce"), nal(5))) is True
    assert h264_is_keyframe(stap_a(nal(9, b"\x10"), nal(7, b"\x42"))) is True


def test_h264_stap_a_with_idr_after_other_units() -> None:
    assert h264_is_keyframe(stap_a(nal(6, b"\x05\x01"), nal(5, b"\x88"))) is True


def test_h264_stap_a_without_keyframe_units() -> None:
    assert h264_is_keyframe(stap_a(nal(6, b"\x05\x01"), nal(1, b"\x9a"))) is False


def test_h264_stap_a_truncated() -> None:
    assert h264_is_keyframe(bytes([0x78])) is False
    assert h264_is_keyframe(bytes([0x78, 0x00])) is False
    assert h264_is_keyframe(bytes([0x78, 0x00, 0x05])) is False


def test_h264_fu_a_start_of_idr() -> None:
    assert h264_is_keyframe(fu_a(5, start=True)) is True


def test_h264_fu_a_continuation_and_end_of_idr() -> None:
    assert h264_is_keyframe(fu_a(5, start=False)) is False
    assert h264_is_keyframe(fu_a(5, start=False, end=True)) is False


def test_h264_fu_a_start_of_non_idr() -> None:
    assert h264_is_keyframe(fu_a(1, start=True)) is False


def test_h264_empty_and_short() -> None:
    assert h264_is_keyframe(b"") is False
    assert h264_is_keyframe(bytes([0x7C])) is False  # FU-A indicator alone


@given(st.binary(max_size=32))
def test_h264_never_raises(payload: bytes) -> None:
    assert h264_is_keyframe(payload) in (True, False)


def test_keyframe_detector_by_mime() -> None:
    assert keyframe_detector("video/VP8") is vp8_is_keyframe
    assert keyframe_detector("video/vp8") is vp8_is_keyframe
    assert keyframe_detector("video/H264") is h264_is_keyframe
    assert keyframe_detector("audio/opus") is None


# --- sequence numbers -----------------------------------------------------------------


def test_seq_newer_basic() -> None:
    assert seq_newer(2, 1)
    assert not seq_newer(1, 2)
    assert not seq_newer(5, 5)


def test_seq_newer_wraps_around() -> None:
    assert seq_newer(0, 0xFFFF)
    assert seq_newer(10, 0xFFF0)
    assert not seq_newer(0xFFFF, 0)
    assert not seq_newer(0xFFF0, 10)


def test_seq_newer_half_range_boundary() -> None:
    assert seq_newer(0x7FFF, 0)
    assert not seq_newer(0x8000, 0)
    assert seq_newer(0, 0x8001)


@given(st.integers(0, 0xFFFF), st.integers(1, 0x7FFF))
def test_seq_newer_property(b: int, d: int) -> None:
    a = (b + d) & 0xFFFF
    assert seq_newer(a, b)
    assert not seq_newer(b, a)


# ------------------------------------------------------------------ the recorder's side of the module


def test_build_packet_round_trips_through_the_reader() -> None:
    from sfu.rtp import build_packet, csrcs, extensions

    data = build_packet(111, 7, 960, 0xABCD, b"opus", marker=True, extensions={1: b"\x80", 3: b"abc"},
                        padding=4, csrcs=(5, 6))
    h = parse_header(data)
    assert (h.payload_type, h.sequence, h.timestamp, h.ssrc, h.marker) == (111, 7, 960, 0xABCD, True)
    assert data[h.payload_offset : h.payload_end] == b"opus"
    assert csrcs(data) == (5, 6)
    assert extensions(data, h) == {1: b"\x80", 3: b"abc"}


def test_extensions_reads_two_byte_elements_and_ignores_other_profiles() -> None:
    from sfu.rtp import extensions

    block = bytes([5, 2, 0xAA, 0xBB, 0, 0, 0, 0])
    two = struct.pack("!BBHII", 0x90, 96, 1, 1, 1) + struct.pack("!HH", 0x1000, 2) + block + b"p"
    assert extensions(two, parse_header(two)) == {5: b"\xaa\xbb"}
    other = struct.pack("!BBHII", 0x90, 96, 1, 1, 1) + struct.pack("!HH", 0x1234, 1) + b"abcd" + b"p"
    assert extensions(other, parse_header(other)) == {}


def test_extensions_raise_for_an_element_overrunning_the_block() -> None:
    from sfu.rtp import extensions

    data = struct.pack("!BBHII", 0x90, 96, 1, 1, 1) + struct.pack("!HH", 0xBEDE, 1) + bytes([0x1F, 1, 2, 3]) + b"p"
    with pytest.raises(RtpError, match="overruns"):
        extensions(data, parse_header(data))
