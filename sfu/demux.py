"""What the node's one media port needs to know about a datagram before it picks a connection.

Pure functions (no sockets, no aioice): :class:`sfu.glue.UdpMux` uses them for every datagram
that reaches the shared UDP port (``media.udp_port``), and tests/unit/sfu/test_demux.py pins them.

RFC 7983 says what a datagram on a WebRTC port is by its first byte: 0..3 STUN, 20..63 DTLS,
128..191 RTP/RTCP. STUN binding requests name the connection they are for in USERNAME
(``<the receiver's ufrag>:<the sender's ufrag>``, RFC 8445 section 7.2.2) and are signed with
the receiver's ICE password (MESSAGE-INTEGRITY, HMAC-SHA1, RFC 8489 section 14.5); DTLS and
SRTP carry no such name, so they are matched by the address a valid check came from.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

STUN_HEADER = 20
STUN_COOKIE = 0x2112A442
ATTR_USERNAME = 0x0006
ATTR_MESSAGE_INTEGRITY = 0x0008
INTEGRITY_LENGTH = 20  # HMAC-SHA1

# message classes (the C1/C0 bits of the message type, RFC 8489 section 5)
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

# what a datagram is, by its first byte (RFC 7983)
KIND_STUN, KIND_DTLS, KIND_RTP, KIND_OTHER = "stun", "dtls", "rtp", "other"


def kind_of(data: bytes) -> str:
    """``stun``, ``dtls``, ``rtp`` (RTP or RTCP) or ``other`` (empty, or nothing WebRTC sends)."""
    if not data:
        return KIND_OTHER
    first = data[0]
    if first < 4:
        return KIND_STUN
    if 19 < first < 64:
        return KIND_DTLS
    if 127 < first < 192:
        return KIND_RTP
    return KIND_OTHER


class StunError(ValueError):
    """A datagram that starts like STUN but is not a well-formed STUN message."""


@dataclass(frozen=True)
class StunHead:
    """The parts of a STUN message the demultiplexer reads."""

    message_class: int  # REQUEST, INDICATION, SUCCESS or ERROR
    transaction_id: bytes  # 12 bytes
    username: str | None  # USERNAME, if present (and valid UTF-8)
    integrity_at: int  # offset of the MESSAGE-INTEGRITY attribute, -1: none


def parse_stun(data: bytes) -> StunHead:
    """Read a STUN message's class, transaction id, USERNAME and where its MESSAGE-INTEGRITY is.
    Raises :class:`StunError` on a truncated message, a wrong magic cookie, a length field that
    does not match the datagram, or an attribute running past the end."""
    n = len(data)
    if n < STUN_HEADER:
        raise StunError("shorter than a STUN header")
    mtype, length, cookie = struct.unpack_from("!HHI", data, 0)
    if mtype & 0xC000 or cookie != STUN_COOKIE:
        raise StunError("not a STUN message (type bits or magic cookie)")
    if length % 4 or STUN_HEADER + length != n:
        raise StunError("the STUN length field does not match the datagram")
    message_class = ((mtype >> 4) & 1) | ((mtype >> 7) & 2)
    username: str | None = None
    integrity_at = -1
    pos = STUN_HEADER
    while pos < n:
        if pos + 4 > n:
            raise StunError("a truncated STUN attribute header")
        atype, alen = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + alen
        if end > n:
            raise StunError("a STUN attribute runs past the end")
        if integrity_at < 0:  # attributes after MESSAGE-INTEGRITY are not authenticated
            if atype == ATTR_USERNAME:
                try:
                    username = str(data[pos + 4 : end], "utf-8")  # (text of the STUN attribute, not media)
                except UnicodeDecodeError:
                    raise StunError("USERNAME is not UTF-8") from None
            elif atype == ATTR_MESSAGE_INTEGRITY:
                if alen != INTEGRITY_LENGTH:
                    raise StunError("MESSAGE-INTEGRITY is not 20 bytes")
                integrity_at = pos
        pos = end + (-alen % 4)
    return StunHead(message_class, data[8:20], username, integrity_at)


def local_ufrag(username: str) -> str:
    """The receiver's part of a binding request's USERNAME (``RECEIVER:SENDER``)."""
    return username.partition(":")[0]


def integrity_ok(data: bytes, head: StunHead, key: bytes) -> bool:
    """Whether ``data``'s MESSAGE-INTEGRITY is the HMAC-SHA1 of the message up to it, keyed with
    ``key`` (the ICE password), with the length field counting up to the end of that attribute
    (RFC 8489 section 14.5). A message without MESSAGE-INTEGRITY fails."""
    at = head.integrity_at
    if at < 0:
        return False
    covered = bytearray(data[:at])
    struct.pack_into("!H", covered, 2, at - STUN_HEADER + 4 + INTEGRITY_LENGTH)
    expected = hmac.new(key, bytes(covered), hashlib.sha1).digest()
    return hmac.compare_digest(expected, data[at + 4 : at + 4 + INTEGRITY_LENGTH])


def sockaddr_bytes(host: str, port: int) -> bytes:
    """A ``struct sockaddr_in`` / ``sockaddr_in6`` for ``(host, port)``, as the C fan-out loop
    hands it to ``sendmmsg`` (``msg_name``): the family in the machine's byte order, the port
    and the address in network order. Raises OSError for a host that is not an IP literal."""
    import socket

    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        return struct.pack("=H", socket.AF_INET6) + struct.pack("!HI16sI", port, 0, packed, 0)
    packed = socket.inet_pton(socket.AF_INET, host)
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, packed)
