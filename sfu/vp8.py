"""The VP8 RTP payload descriptor (RFC 7741 §4.2): read it, and write a subscriber's picture ids.

The SFU never decodes VP8, but it must touch two fields of the descriptor in front of every
packet's payload, because a subscriber's picture ids must form one continuous sequence:

* **across a layer switch**: simulcast layers are separate encoders with unrelated picture ids
  and TL0PICIDX. A receiver that tracks frame references by picture id (libwebrtc does as soon
  as temporal layers are on) would take the new layer's keyframe for an old or a far-future
  frame. The subscriber's ids go on from the last one it got (``Forwarder`` rebases them).
* **across a dropped frame**: a subscriber on a lower temporal layer does not get the frames of
  the higher ones; its picture ids skip them (one id less per dropped picture), or the receiver
  would wait for the missing ids.

Only the bytes are rewritten; the descriptor keeps its layout and length (a 7-bit picture id
stays 7 bits). ``sfu/_fanout.c`` reads and writes the same fields; the recorder reads the
descriptor with :func:`parse` too (``recorder/depacketize.py``), so there is one VP8 descriptor
parser in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_TID = -1  # no T bit: a single temporal layer
ALL_TIDS = 7  # a temporal target that forwards every layer


@dataclass(frozen=True, slots=True)
class Descriptor:
    """The fields of one packet's descriptor the SFU uses; positions are payload offsets."""

    start: bool  # S bit with partition index 0: the first packet of a frame
    picture_id: int  # -1: absent
    picture_id_bits: int  # 7 or 15 (0: absent)
    picture_id_pos: int
    tl0picidx: int  # -1: absent
    tl0picidx_pos: int
    tid: int  # NO_TID: absent
    layer_sync: bool  # Y bit: this frame depends only on TL0 frames
    length: int = 0  # bytes of descriptor before the VP8 data (0: cut short)
    partition: int = 0  # PID: the partition index
    partition_start: bool = False  # S bit: the first packet of a partition


NONE = Descriptor(False, -1, 0, 0, -1, 0, NO_TID, False)


def parse(payload: bytes) -> Descriptor:
    """The descriptor at the start of a VP8 RTP payload; ``NONE`` if it is cut short."""
    n = len(payload)
    if n < 1:
        return NONE
    b0 = payload[0]
    s_bit = bool(b0 & 0x10)
    start = s_bit and not b0 & 0x07
    if not b0 & 0x80:  # no X byte: nothing else
        return Descriptor(start, -1, 0, 0, -1, 0, NO_TID, False, 1, b0 & 0x07, s_bit)
    if n < 2:
        return NONE
    x = payload[1]
    pos = 2
    pid = -1
    pid_bits = 0
    pid_pos = 0
    if x & 0x80:  # I: picture id, 7 or (M bit) 15 bits
        if pos >= n:
            return NONE
        pid_pos = pos
        if payload[pos] & 0x80:
            if pos + 1 >= n:
                return NONE
            pid = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
            pid_bits = 15
            pos += 2
        else:
            pid = payload[pos]
            pid_bits = 7
            pos += 1
    tl0 = -1
    tl0_pos = 0
    if x & 0x40:  # L: TL0PICIDX
        if pos >= n:
            return NONE
        tl0 = payload[pos]
        tl0_pos = pos
        pos += 1
    tid = NO_TID
    sync = False
    if x & 0x30:  # T or K: the TID/Y/KEYIDX byte
        if pos >= n:
            return NONE
        if x & 0x20:  # T: TID and Y are set
            tid = payload[pos] >> 6
            sync = bool(payload[pos] & 0x20)
        pos += 1
    return Descriptor(start, pid, pid_bits, pid_pos, tl0, tl0_pos, tid, sync, pos, b0 & 0x07, s_bit)


def is_keyframe(payload: bytes) -> bool:
    """True if this VP8 RTP payload starts a keyframe. Allocation-free (every incoming video
    packet): the descriptor's length without :func:`parse`'s object."""
    n = len(payload)
    if n < 1:
        return False
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # S bit: start of a partition; PID must be 0
        return False
    pos = 1
    if b0 & 0x80:  # X: extended control bits
        if n < 2:
            return False
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id
            if pos >= n:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/KEYIDX byte
            pos += 1
    if pos >= n:
        return False
    return not payload[pos] & 0x01  # VP8 frame header: P bit 0 means keyframe


def rewrite(payload: bytes, d: Descriptor, picture_id: int, tl0picidx: int) -> bytes:
    """``payload`` with its picture id and TL0PICIDX replaced (fields it lacks stay absent)."""
    if d.picture_id_bits == 0 and d.tl0picidx < 0:
        return payload
    b = bytearray(payload)
    if d.picture_id_bits == 15:
        b[d.picture_id_pos] = 0x80 | ((picture_id >> 8) & 0x7F)
        b[d.picture_id_pos + 1] = picture_id & 0xFF
    elif d.picture_id_bits == 7:
        b[d.picture_id_pos] = picture_id & 0x7F
    if d.tl0picidx >= 0:
        b[d.tl0picidx_pos] = tl0picidx & 0xFF
    return bytes(b)


def picture_id_mask(d: Descriptor) -> int:
    return 0x7FFF if d.picture_id_bits == 15 else 0x7F
