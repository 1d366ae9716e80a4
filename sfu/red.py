"""RED (RFC 2198, ``audio/red``) containers, as the SFU passes them through.

A browser that negotiated RED sends each Opus frame together with a copy of the previous one, so
a single lost packet costs nothing: the next one carries it. The SFU does not decode either
frame; it only edits the container's headers:

* a subscriber that negotiated RED gets the packet as it came, with each block's payload type
  rewritten to *its* Opus payload type (the publisher's numbering means nothing to it);
* a subscriber that did not (aiortc peers, the recorder, room hardware) gets the primary block
  alone: the container's last block, which is the frame a plain Opus packet would carry;
* a plain Opus packet from a RED publisher goes to RED subscribers in a one-block container.

Layout: a 4-byte header per redundant block (F=1, PT, 14-bit timestamp offset, 10-bit length),
then a 1-byte header (F=0, PT) for the primary, then the blocks' data in the same order.
"""

from __future__ import annotations

RED_MIME = "audio/red"


class RedError(ValueError):
    """A RED payload whose headers do not fit in it."""


def _headers(payload: bytes) -> tuple[list[int], int, int]:
    """(header offsets, where the data starts, total length of the redundant blocks)."""
    n = len(payload)
    pos = 0
    offsets = []
    redundant = 0
    while pos < n and payload[pos] & 0x80:
        if pos + 4 > n:
            raise RedError("a RED block header runs past the payload")
        offsets.append(pos)
        redundant += ((payload[pos + 2] & 0x03) << 8) | payload[pos + 3]
        pos += 4
    if pos >= n:
        raise RedError("a RED payload without its primary block header")
    offsets.append(pos)
    data = pos + 1
    if data + redundant > n:
        raise RedError("RED block lengths exceed the payload")
    return offsets, data, redundant


def primary(payload: bytes) -> bytes:
    """The primary block's data: what a plain Opus packet would carry."""
    _, data, redundant = _headers(payload)
    return payload[data + redundant:]


def renumber(payload: bytes, payload_type: int) -> bytes:
    """The same container with every block's payload type set to ``payload_type``."""
    offsets, _, _ = _headers(payload)
    out = bytearray(payload)
    pt = payload_type & 0x7F
    for pos in offsets:
        out[pos] = (out[pos] & 0x80) | pt
    return bytes(out)


def wrap(frame: bytes, payload_type: int) -> bytes:
    """A one-block container (no redundancy) around a plain frame."""
    return bytes((payload_type & 0x7F,)) + frame
