"""The pure half of the node's shared media port (sfu/demux.py): what a datagram is, and which
connection a STUN message names (against STUN messages built by aioice, the other end's code)."""

from __future__ import annotations

import socket
import struct

import pytest
from aioice import stun

from sfu import demux

PASSWORD = b"0123456789abcdefghijkl"


def binding_request(username: str, key: bytes | None = PASSWORD) -> bytes:
    m = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    m.attributes["USERNAME"] = username
    m.attributes["PRIORITY"] = 12345
    if key is not None:
        m.add_message_integrity(key)
    else:
        m.add_fingerprint()
    return bytes(m)


def test_kind_of_follows_rfc_7983() -> None:
    assert demux.kind_of(b"") == demux.KIND_OTHER
    assert demux.kind_of(b"\x00\x01") == demux.KIND_STUN
    assert demux.kind_of(bytes([22, 0xFE, 0xFD])) == demux.KIND_DTLS
    assert demux.kind_of(bytes([0x80, 96])) == demux.KIND_RTP
    assert demux.kind_of(bytes([0x81, 201])) == demux.KIND_RTP  # RTCP shares the range
    assert demux.kind_of(bytes([64])) == demux.KIND_OTHER and demux.kind_of(bytes([255])) == demux.KIND_OTHER


def test_a_binding_request_names_its_connection_and_checks_out_with_its_password() -> None:
    data = binding_request("srvA:peerB")
    head = demux.parse_stun(data)
    assert head.message_class == demux.REQUEST and head.username == "srvA:peerB"
    assert demux.local_ufrag(head.username) == "srvA"
    assert head.transaction_id == data[8:20] and head.integrity_at > 0
    assert demux.integrity_ok(data, head, PASSWORD)
    assert not demux.integrity_ok(data, head, b"another password, 22ch")


def test_without_integrity_or_tampered_it_fails() -> None:
    data = binding_request("srvA:peerB", key=None)
    head = demux.parse_stun(data)
    assert head.integrity_at == -1 and not demux.integrity_ok(data, head, PASSWORD)
    signed = bytearray(binding_request("srvA:peerB"))
    signed[30] ^= 1  # inside USERNAME, covered by the HMAC
    forged = bytes(signed)
    assert not demux.integrity_ok(forged, demux.parse_stun(forged), PASSWORD)


def test_responses_and_indications_are_classed() -> None:
    for cls, want in ((stun.Class.RESPONSE, demux.SUCCESS), (stun.Class.ERROR, demux.ERROR),
                      (stun.Class.INDICATION, demux.INDICATION)):
        m = stun.Message(message_method=stun.Method.BINDING, message_class=cls)
        m.attributes["XOR-MAPPED-ADDRESS"] = ("127.0.0.1", 4000)
        m.add_message_integrity(PASSWORD)
        head = demux.parse_stun(bytes(m))
        assert head.message_class == want and head.username is None
        assert demux.integrity_ok(bytes(m), head, PASSWORD)


@pytest.mark.parametrize("data", [
    b"", b"\x00\x01", b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"x" * 11,  # shorter than a header
    b"\x00\x01\x00\x00" + b"\x00\x00\x00\x00" + b"x" * 12,  # no magic cookie
    b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + b"x" * 12,  # length says 8, nothing follows
    b"\x00\x01\x00\x04" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"\x00\x06\x00\x20",  # attribute past the end
    b"\x00\x01\x00\x03" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"abc",  # length not a multiple of 4
    b"\xc0\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"x" * 12,  # the two top bits set
    b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"\x00\x06\x00\x04\xff\xfe\xfd\xfc",  # not UTF-8
    b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"\x00\x08\x00\x04abcd",  # a 4-byte integrity
])
def test_truncated_or_malformed_stun_is_refused(data: bytes) -> None:
    with pytest.raises(demux.StunError):
        demux.parse_stun(data)


def test_every_prefix_of_a_real_request_is_refused_or_parsed() -> None:
    data = binding_request("srvA:peerB")
    for n in range(len(data)):
        with pytest.raises(demux.StunError):
            demux.parse_stun(data[:n])


def test_sockaddr_bytes_are_what_the_kernel_takes() -> None:
    v4 = demux.sockaddr_bytes("127.0.0.1", 7882)
    assert len(v4) == 16 and struct.unpack("=H", v4[:2])[0] == socket.AF_INET
    assert struct.unpack("!H", v4[2:4])[0] == 7882 and v4[4:8] == socket.inet_aton("127.0.0.1")
    v6 = demux.sockaddr_bytes("::1", 9)
    assert len(v6) == 28 and struct.unpack("=H", v6[:2])[0] == socket.AF_INET6
    with pytest.raises(OSError):
        demux.sockaddr_bytes("host.example", 1)
