"""The direct AES-GCM protect (``sfu._fanout.AeadSession``, #19) against libsrtp, for real.

pylibsrtp's ``Session`` with aiortc's send policy is the reference: the same master key must
give the same datagrams byte for byte, through the C loop and the Python paths interleaved, across
a sequence-number wrap (ROC 0 -> 1). Then a real aiortc receiver unprotects what the SFU sent.
"""

from __future__ import annotations

import asyncio
import os
import struct
from types import SimpleNamespace
from typing import Any

import pylibsrtp
import pytest
from aiortc import RTCPeerConnection
from pylibsrtp import Policy, Session

from sfu import glue, lane, srtp_kdf
from sfu.downtrack import DownTrack
from sfu.srtp_kdf import gcm_session_keys
from tests.unit.sfu.test_glue_mux import wait_connected
from tests.unit.sfu.test_lane import RecordingTransport, SocketTransport

pytestmark = pytest.mark.skipif(lane.AeadSession is None, reason="sfu._fanout built without OpenSSL")

PROFILES = [(Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32), (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16)]


def _libsrtp_tx(master: bytes, profile: int) -> Session:
    """The send session exactly as aiortc's RTCDtlsTransport._setup_srtp makes it."""
    policy = Policy(key=master, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def _aead(master: bytes, key_len: int) -> Any:
    keys = gcm_session_keys(master[:key_len], master[key_len:])
    return lane.AeadSession(keys.key, keys.salt)


def _rtp(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 96, marker: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | marker, seq, ts, ssrc) + payload


@pytest.mark.parametrize(("profile", "key_len"), PROFILES)
def test_protect_is_libsrtps_across_a_wrap_with_repairs_and_old_packets(profile: int, key_len: int) -> None:
    master = os.urandom(key_len + 12)
    ref, aead = _libsrtp_tx(master, profile), _aead(master, key_len)
    assert aead.index(0x1234) is None
    seqs = [65000, 65001, 64990, *range(65002, 65536), *range(0, 40), 65530, 3, *range(40, 300), 1200 - 1024]
    for i, seq in enumerate(seqs):
        packet = _rtp(seq, 90 * i, 0x1234, os.urandom(1 + i % 300), marker=0x80 if i % 5 == 0 else 0)
        assert aead.protect(packet) == ref.protect(packet), (i, seq)
        if i % 7 == 0:  # another SSRC of the session (audio) keeps its own index
            other = _rtp((i * 3) & 0xFFFF, i, 0x5678, b"opus" * 10, pt=111)
            assert aead.protect_parts(other[:12], other[12:]) == ref.protect(other)
    assert aead.index(0x1234) == (1 << 16) | 299  # ROC 1, highest 299
    # with a CSRC and a header extension the AAD is the whole header
    header = b"\x91\x60\x01\x2c" + b"\x00\x00\x00\x01" + b"\x00\x00\x12\x34" + b"\x00\x00\x00\x09" \
        + b"\xbe\xde\x00\x01" + b"\x22\x01\x02\x03"
    assert aead.protect(header + b"x" * 50) == ref.protect(header + b"x" * 50)
    # older than the 1024-packet window: libsrtp refuses, so does the direct protect
    too_old = _rtp(299 - 1024 & 0xFFFF, 0, 0x1234, b"late")
    with pytest.raises(pylibsrtp.Error):
        ref.protect(too_old)
    with pytest.raises(ValueError):
        aead.protect(too_old)
    with pytest.raises(ValueError):
        aead.protect(b"\x80\x60\x00")  # not an RTP packet
    assert aead.errors == 2 and aead.protected > len(seqs)


class AeadTransport(SocketTransport):
    """A subscriber transport as RawTransport builds it for an AES-GCM session: the Egress has the
    AeadSession and the Python path (``send_rtp_parts``) protects with the same one (the loopback
    sockets, ``datagrams`` and ``close`` are test_lane's)."""

    def __init__(self, aead: Any, libsrtp_session: Session) -> None:
        super().__init__(ready=False)
        self.aead = aead
        self.egress.set(self.tx.fileno(), glue.srtp_session_address(libsrtp_session), (libsrtp_session, self.tx),
                        b"", aead)

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        self.python_sends += 1
        self.tx.send(self.aead.protect_parts(header, payload))
        return True


def _down(transport: Any, last_out_seq: int) -> DownTrack:
    d = DownTrack("s1", "0", "video", 0x1234, 100, 90000, transport)
    d.fwd.last_out_seq, d.fwd.last_out_ts = last_out_seq, 777_000
    d.fwd.switch("source")
    return d


@pytest.mark.parametrize(("profile", "key_len"), PROFILES)
def test_c_loop_and_python_paths_share_one_rollover_counter(profile: int, key_len: int) -> None:
    """The C loop's copies and the Python paths' sends of one SSRC (repairs of sent packets, a
    packet sent by Python in between) go through one AeadSession: what arrives is what libsrtp
    would have sent for the same plaintexts in the same order, across the wrap."""
    assert lane.fanout is not None
    master = os.urandom(key_len + 12)
    fast = AeadTransport(_aead(master, key_len), _libsrtp_tx(master, profile))
    try:
        slow = RecordingTransport()
        downs = [_down(fast, 65400), _down(slow, 65400)]
        lanes = tuple(d.fwd for d in downs)
        plain: list[bytes] = []  # every packet of the fast transport, in the order it was sent
        got: list[bytes] = []  # read as we go: 450 datagrams would overflow the socket's buffer
        seq, ts = 1000, 5000
        for i in range(400):
            seq = (seq + (1 if i % 50 else 3)) & 0xFFFF  # a few gaps
            ts = (ts + 3000) & 0xFFFFFFFF
            before = len(slow.rtp)
            assert lane.fanout(tuple(downs), lanes, os.urandom(30 + i % 40), 0, seq, ts, 33 * i, i == 0) >> 32 == 0
            plain += slow.rtp[before:]
            if i % 9 == 4:  # a NACK repair (no RTX): the same packet again, through Python
                old = slow.rtp[-3]
                fast.send_rtp_parts(old[:12], old[12:])
                plain.append(old)
            got += fast.datagrams()
        assert fast.python_sends > 40  # the first packet (rebase) and the repairs took Python
        assert downs[0].packets == 400 and fast.egress.sent == 399  # the rest the C loop
        out_seqs = [int.from_bytes(p[2:4], "big") for p in plain]
        assert 65535 in out_seqs and 0 in out_seqs  # the output crossed the wrap
        expected = _libsrtp_tx(master, profile)
        assert got == [expected.protect(p) for p in plain]
        assert fast.aead.index(0x1234) >> 16 == 1
    finally:
        fast.close()


def _keyed_dtls(profile: int, key_len: int) -> SimpleNamespace:
    policy = Policy(key=os.urandom(key_len + 14), ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    return SimpleNamespace(_tx_srtp=glue._KeyedSession(policy))


def test_aead_session_only_for_the_aead_profiles_and_when_switched_on() -> None:
    gcm = _keyed_dtls(Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32)
    first = glue.aead_session(gcm)
    assert first is not None and glue.aead_session(gcm) is first  # one per send session
    assert glue.aead_session(_keyed_dtls(Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16)) is None  # libsrtp
    assert glue.aead_session(SimpleNamespace(_tx_srtp=None)) is None
    assert glue.aead_session(SimpleNamespace(_tx_srtp=Session())) is None  # no key captured
    glue.set_direct_protect(False)
    try:
        assert glue.aead_session(_keyed_dtls(Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16)) is None
    finally:
        glue.set_direct_protect(True)


def test_session_keys_are_rfc_3711s_kdf() -> None:
    """RFC 3711 appendix B.3's key derivation test vectors (AES-CM PRF, 112-bit salt): the PRF
    the GCM keys use with the 96-bit salt (whose results the tests above check against libsrtp)."""
    master_key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    master_salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert srtp_kdf._prf(master_key, master_salt, 0x00, 16) == bytes.fromhex("C61E7A93744F39EE10734AFE3FF7A087")
    assert srtp_kdf._prf(master_key, master_salt, 0x02, 14) == bytes.fromhex("30CBBC08863D8C85D49DB34A9AE1")
    with pytest.raises(ValueError):
        gcm_session_keys(b"k" * 24, b"s" * 12)
    with pytest.raises(ValueError):
        gcm_session_keys(b"k" * 16, b"s" * 14)


async def test_a_real_aiortc_receiver_unprotects_what_the_c_loop_sent() -> None:
    glue.configure_ice(["127.0.0.1"])
    mux = glue.UdpMux(["127.0.0.1"], 0)
    server, client = RTCPeerConnection(), RTCPeerConnection()
    got: list[bytes] = []
    try:
        server.addTransceiver("video", direction="sendonly")
        glue.use_media_port(server, mux)
        await server.setLocalDescription(await server.createOffer())
        await client.setRemoteDescription(server.localDescription)
        glue.receive_raw(client, lambda n: None, lambda d, ms: got.append(d), lambda d: None)
        await client.setLocalDescription(await client.createAnswer())
        await server.setRemoteDescription(client.localDescription)
        glue.receive_raw(client, lambda n: None, lambda d, ms: got.append(d), lambda d: None)
        await wait_connected(server, client)
        dtls = server.getTransceivers()[0].sender.transport
        assert type(dtls._tx_srtp) is glue._KeyedSession  # aiortc made it with the captured key
        assert dtls._tx_srtp.classroom_master[0] == Policy.SRTP_PROFILE_AEAD_AES_256_GCM  # what aiortc picks
        raw = glue.raw_transport(server)
        assert raw is not None and raw.send_rtp(_rtp(65533, 0, 0x4242, b"first, through Python"))
        aead = glue.aead_session(dtls)
        assert aead is not None and raw.egress.aead is aead and raw.egress.batched
        assert lane.fanout is not None
        slow = RecordingTransport()
        downs = [_down(raw, 65520), _down(slow, 65520)]
        for i in range(40):
            lane.fanout(tuple(downs), tuple(d.fwd for d in downs), bytes([i]) * 200, 0, 100 + i, 3000 * i, i,
                        i == 0)
            if i % 4 == 0:
                await asyncio.sleep(0.01)  # let the client read
        assert raw.egress.sent == 39  # all but the first (the rebase) by the C loop
        for _ in range(100):
            if len(got) == 41:
                break
            await asyncio.sleep(0.02)
        assert got[0] == _rtp(65533, 0, 0x4242, b"first, through Python")
        assert got[1:] == slow.rtp  # decrypted by aiortc's libsrtp receive session, in order
        assert aead.index(0x1234) >> 16 == 1  # across the wrap
    finally:
        await client.close()
        await server.close()
        mux.close()
