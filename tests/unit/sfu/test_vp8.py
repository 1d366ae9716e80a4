"""The VP8 payload descriptor: parse and rewrite (sfu/vp8.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sfu import vp8


def descriptor(pid: int | None = 300, bits: int = 15, tl0: int | None = 7, tid: int | None = 2, start: bool = True,
               sync: bool = False) -> bytes:
    """A descriptor with the given fields (None: absent), then one byte of VP8 payload."""
    x = (0x80 if pid is not None else 0) | (0x40 if tl0 is not None else 0) | (0x20 if tid is not None else 0)
    out = bytearray([(0x80 if x else 0) | (0x10 if start else 0)])
    if x:
        out.append(x)
    if pid is not None:
        out += bytes([0x80 | (pid >> 8), pid & 0xFF]) if bits == 15 else bytes([pid & 0x7F])
    if tl0 is not None:
        out.append(tl0)
    if tid is not None:
        out.append((tid << 6) | (0x20 if sync else 0))
    return bytes(out) + b"\x01"


def test_all_fields() -> None:
    d = vp8.parse(descriptor(pid=0x1234, tl0=9, tid=1, sync=True))
    assert (d.start, d.picture_id, d.picture_id_bits, d.tl0picidx, d.tid, d.layer_sync) == (True, 0x1234, 15, 9, 1,
                                                                                           True)


def test_seven_bit_picture_id_and_no_temporal_fields() -> None:
    d = vp8.parse(descriptor(pid=100, bits=7, tl0=None, tid=None, start=False))
    assert (d.start, d.picture_id, d.picture_id_bits, d.tl0picidx, d.tid) == (False, 100, 7, -1, vp8.NO_TID)
    assert vp8.picture_id_mask(d) == 0x7F


def test_no_extension_byte() -> None:
    d = vp8.parse(b"\x10\x00")
    assert d.start and d.picture_id == -1 and d.tid == vp8.NO_TID


def test_a_later_partition_is_not_a_frame_start() -> None:
    assert not vp8.parse(b"\x11\x00").start


@given(st.binary(max_size=6))
def test_short_or_random_input_never_raises(data: bytes) -> None:
    d = vp8.parse(data)
    if d.picture_id_bits:
        assert d.picture_id_pos < len(data)
    if d.tl0picidx >= 0:
        assert d.tl0picidx_pos < len(data)


def test_cut_short_is_none() -> None:
    assert vp8.parse(descriptor()[:3]) == vp8.NONE
    assert vp8.parse(b"") == vp8.NONE


@given(pid=st.integers(0, 0x7FFF), new=st.integers(0, 0x7FFF), tl0=st.integers(0, 255), new_tl0=st.integers(0, 255),
       bits=st.sampled_from([7, 15]), tid=st.integers(0, 3))
def test_rewrite_changes_only_those_fields(pid: int, new: int, tl0: int, new_tl0: int, bits: int, tid: int) -> None:
    if bits == 7:
        pid &= 0x7F
    data = descriptor(pid=pid, bits=bits, tl0=tl0, tid=tid)
    d = vp8.parse(data)
    out = vp8.rewrite(data, d, new, new_tl0)
    e = vp8.parse(out)
    assert len(out) == len(data)
    assert e.picture_id == new & vp8.picture_id_mask(d) and e.tl0picidx == new_tl0 and e.tid == tid
    assert vp8.rewrite(out, e, pid, tl0) == data


def test_rewrite_without_fields_is_the_same_bytes() -> None:
    data = descriptor(pid=None, tl0=None, tid=None)
    assert vp8.rewrite(data, vp8.parse(data), 5, 6) is data


@given(pid=st.one_of(st.none(), st.integers(0, 0x7FFF)), bits=st.sampled_from([7, 15]),
       tl0=st.one_of(st.none(), st.integers(0, 255)), tid=st.one_of(st.none(), st.integers(0, 3)))
def test_length_is_where_the_vp8_data_starts(pid: int | None, bits: int, tl0: int | None, tid: int | None) -> None:
    data = descriptor(pid=pid, bits=bits, tl0=tl0, tid=tid)
    assert vp8.parse(data).length == len(data) - 1


def test_a_keyidx_byte_without_tid_is_counted() -> None:
    d = vp8.parse(bytes([0x90, 0x10, 0x05, 0x00]))  # K only: KEYIDX 5, then VP8 data
    assert d.length == 3 and d.tid == vp8.NO_TID
    assert vp8.is_keyframe(bytes([0x90, 0x10, 0x05, 0x00])) and not vp8.is_keyframe(bytes([0x90, 0x10, 0x05, 0x01]))
