"""The contract between sfu/glue.py and the aiortc/aioice internals it relies on.

aiortc and aioice are pinned in pyproject.toml. When either is upgraded, these tests say which
private name or call shape glue.py depends on has changed. No sockets are opened here (the
``forbid_codecs``/``configure_ice`` check runs in a subprocess because it patches modules).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aioice.ice
import aiortc.codecs
import aiortc.rtcdtlstransport
import aiortc.rtcicetransport
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import aiortc.rtcrtptransceiver
import pylibsrtp
import uvloop
from aiortc.rtcrtpparameters import (
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcsessiondescription import RTCSessionDescription

from sfu import glue
from sfu.stats import STATS

ROOT = Path(__file__).resolve().parents[3]
DTLS = aiortc.rtcdtlstransport.RTCDtlsTransport
SENDER = aiortc.rtcrtpsender.RTCRtpSender
RECEIVER = aiortc.rtcrtpreceiver.RTCRtpReceiver
PC = aiortc.rtcpeerconnection.RTCPeerConnection


def params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def source(obj: Any) -> str:
    return inspect.getsource(obj)


def pinned(name: str) -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for dep in data["project"]["dependencies"]:
        m = re.fullmatch(rf"{re.escape(name)}==([\w.]+)", dep.replace(" ", ""))
        if m:
            return m.group(1)
    raise AssertionError(f"{name} is not pinned with == in pyproject.toml")


# --- versions -------------------------------------------------------------------------


def test_installed_aiortc_is_the_pinned_version() -> None:
    assert importlib.metadata.version("aiortc") == pinned("aiortc")


def test_installed_aioice_is_the_pinned_version() -> None:
    assert importlib.metadata.version("aioice") == pinned("aioice")


# --- DTLS transport: receive tap and SRTP sessions ------------------------------------


def test_dtls_handle_rtp_data_shape() -> None:
    fn = DTLS._handle_rtp_data
    assert inspect.iscoroutinefunction(fn)
    assert params(fn) == ["self", "data", "arrival_time_ms"]


def test_dtls_handle_rtcp_data_shape() -> None:
    fn = DTLS._handle_rtcp_data
    assert inspect.iscoroutinefunction(fn)
    assert params(fn) == ["self", "data"]


def test_dtls_receive_loop_calls_the_handlers_through_the_instance() -> None:
    """The per-instance replacement only works if aiortc looks them up on ``self``."""
    src = source(DTLS._recv_next)
    assert "self._rx_srtp.unprotect(data)" in src
    assert "self._rx_srtp.unprotect_rtcp(data)" in src
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in src
    assert "await self._handle_rtcp_data(data)" in src


def test_dtls_srtp_sessions_are_attributes() -> None:
    init = source(DTLS.__init__)
    assert "self._rx_srtp: Session = None" in init
    assert "self._tx_srtp: Session = None" in init
    src = source(DTLS)
    assert "self._rx_srtp = Session(" in src
    assert "self._tx_srtp = Session(" in src
    assert "self._tx_srtp.protect(" in src
    assert "self._tx_srtp.protect_rtcp(" in src


def test_dtls_srtp_keys_are_captured_where_aiortc_makes_the_sessions() -> None:
    """glue._KeyedSession replaces the module-global ``Session`` that ``_setup_srtp`` calls, keeping
    the policy's master key; sfu._fanout.AeadSession's index estimate assumes aiortc's send policy
    (allow_repeat_tx, a 1024-packet window) and the profiles' key/salt lengths."""
    assert aiortc.rtcdtlstransport.Session is glue._KeyedSession
    src = source(DTLS._setup_srtp)
    assert "self._tx_srtp = Session(tx_policy)" in src
    assert "key=srtp_tx_key," in src and "ssrc_type=Policy.SSRC_ANY_OUTBOUND," in src
    assert "tx_policy.allow_repeat_tx = True" in src and "tx_policy.window_size = 1024" in src
    for profile in aiortc.rtcdtlstransport.SRTP_PROFILES:
        if profile.libsrtp_profile in glue._AEAD_KEY_LENGTHS:
            assert (profile.key_length, profile.salt_length) == (glue._AEAD_KEY_LENGTHS[profile.libsrtp_profile], 12)
    assert aiortc.rtcdtlstransport.SRTP_PROFILES[0].openssl_profile == b"SRTP_AEAD_AES_256_GCM"  # offered first
    policy = pylibsrtp.Policy(key=bytes(range(44)), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                              srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM)
    assert bytes(policy.key) == bytes(range(44))  # Policy.key reads back what was set (a cffi buffer)
    assert glue._KeyedSession(policy).classroom_master == (policy.srtp_profile, bytes(range(44)))


def test_dtls_transport_property_is_the_ice_transport() -> None:
    assert isinstance(inspect.getattr_static(DTLS, "transport"), property)
    ice_init = source(aiortc.rtcicetransport.RTCIceTransport.__init__)
    assert "self._connection = gatherer._connection" in ice_init


def test_dtls_disconnect_calls_receiver_handle_disconnect() -> None:
    assert "receiver._handle_disconnect()" in source(DTLS)


def test_srtp_session_methods_used() -> None:
    for name in ("protect", "protect_rtcp", "unprotect", "unprotect_rtcp"):
        assert callable(getattr(pylibsrtp.Session, name))


# --- aioice ---------------------------------------------------------------------------


def test_connection_nominated_and_protocols() -> None:
    init = source(aioice.ice.Connection.__init__)
    assert "self._nominated: dict[int, CandidatePair] = {}" in init
    assert "self._protocols: list[StunProtocol] = []" in init
    # aioice itself sends on the nominated pair the same way RawTransport does
    send = source(aioice.ice.Connection.sendto)
    assert "self._nominated.get(component)" in send
    assert "active_pair.remote_addr" in send


def test_candidate_pair_shape() -> None:
    pair = aioice.ice.CandidatePair
    assert pair.State.SUCCEEDED and "self.state = " in source(pair.__init__)
    assert "self._check_list" in source(aioice.ice.Connection.__init__)
    assert "protocol" in params(pair.__init__)
    assert "self.protocol = protocol" in source(pair.__init__)
    assert isinstance(inspect.getattr_static(pair, "remote_addr"), property)


def test_stun_protocol_shape() -> None:
    proto = aioice.ice.StunProtocol
    assert issubclass(proto, asyncio.DatagramProtocol)
    assert params(proto.datagram_received) == ["self", "data", "addr"]
    assert "transport" in proto.__annotations__
    assert "self.transport = " in source(proto.connection_made)
    # aioice sends with transport.sendto(data, addr), as RawTransport does
    assert "self.transport.sendto(data, addr)" in source(proto.send_data)
    # the concrete datagram transports (asyncio's and uvloop's) report their write buffer
    for transport in (asyncio.selector_events._SelectorDatagramTransport, uvloop.loop.UDPTransport):
        assert callable(transport.sendto)
        assert callable(transport.get_write_buffer_size)


def test_get_host_addresses_is_a_module_global_used_by_connection() -> None:
    assert params(aioice.ice.get_host_addresses) == ["use_ipv4", "use_ipv6"]
    assert "get_host_addresses(" in source(aioice.ice.Connection)


# --- sender / receiver / peer connection ----------------------------------------------


def test_sender_shape() -> None:
    assert inspect.iscoroutinefunction(SENDER.send)
    assert params(SENDER.send) == ["self", "parameters"]
    assert inspect.iscoroutinefunction(SENDER.stop)
    assert params(SENDER.stop) == ["self"]
    assert "self._ssrc = random32()" in source(SENDER.__init__)
    assert isinstance(inspect.getattr_static(SENDER, "getCapabilities"), classmethod)
    assert isinstance(inspect.getattr_static(SENDER, "transport"), property)


def test_receiver_shape() -> None:
    assert inspect.iscoroutinefunction(RECEIVER.receive)
    assert params(RECEIVER.receive) == ["self", "parameters"]
    assert inspect.iscoroutinefunction(RECEIVER.stop)
    assert params(RECEIVER.stop) == ["self"]
    assert not inspect.iscoroutinefunction(RECEIVER._handle_disconnect)
    assert params(RECEIVER._handle_disconnect) == ["self"]
    assert isinstance(inspect.getattr_static(RECEIVER, "transport"), property)


def test_peer_connection_starts_media_through_sender_send_and_receiver_receive() -> None:
    connect = source(PC._RTCPeerConnection__connect)  # type: ignore[attr-defined]
    assert "await transceiver.sender.send(self.__localRtp(transceiver))" in connect
    assert "await transceiver.receiver.receive(" in connect


def test_transceiver_stop_calls_receiver_and_sender_stop() -> None:
    stop = source(aiortc.rtcrtptransceiver.RTCRtpTransceiver.stop)
    assert "await self.__receiver.stop()" in stop
    assert "await self.__sender.stop()" in stop


def test_codec_factories_forbid_codecs_patches() -> None:
    assert callable(aiortc.codecs.get_encoder)
    assert callable(aiortc.codecs.get_decoder)
    # looked up as module globals at call time, so patching the module attribute takes effect
    assert aiortc.rtcrtpsender.get_encoder is aiortc.codecs.get_encoder
    assert aiortc.rtcrtpreceiver.get_decoder is aiortc.codecs.get_decoder
    assert re.search(r"= get_encoder\(codec\)", source(aiortc.rtcrtpsender))
    assert re.search(r"= get_decoder\(codec\)", source(aiortc.rtcrtpreceiver))


def test_parameter_dataclasses_have_the_fields_glue_reads() -> None:
    import dataclasses

    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert {"mimeType", "payloadType", "clockRate", "channels", "parameters"} <= names(
        RTCRtpCodecParameters
    )
    assert {"codecs", "headerExtensions", "muxId", "encodings"} <= names(RTCRtpReceiveParameters)
    assert {"codecs", "headerExtensions", "muxId"} <= names(RTCRtpSendParameters)
    assert {"id", "uri"} <= names(RTCRtpHeaderExtensionParameters)
    assert "ssrc" in names(RTCRtpDecodingParameters)
    # prefer_codecs builds capabilities positionally
    assert [f.name for f in dataclasses.fields(RTCRtpCodecCapability)] == [
        "mimeType", "clockRate", "channels", "parameters",
    ]  # fmt: skip


# --- live objects, no sockets ---------------------------------------------------------


class FakeUdp:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def get_write_buffer_size(self) -> int:
        return 123


KEY = bytes(range(30))


def srtp_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


RTP = bytes([0x80, 0x60, 0x00, 0x01]) + bytes(8) + b"payload"
RTCP_RR = bytes([0x80, 201, 0x00, 0x01]) + bytes(4)


async def test_a_fresh_peer_connection_has_the_shapes_glue_uses() -> None:
    pc = PC()
    try:
        t = pc.addTransceiver("audio", direction="sendrecv")
        dtls = t.receiver.transport
        assert isinstance(dtls, DTLS)
        assert t.sender.transport is dtls
        assert dtls._tx_srtp is None and dtls._rx_srtp is None
        conn = dtls.transport._connection
        assert isinstance(conn, aioice.ice.Connection)
        assert conn._nominated == {}
        assert conn._protocols == []
        assert isinstance(t.sender._ssrc, int) and 0 <= t.sender._ssrc < 2**32
        assert glue.sender_ssrc(t) == t.sender._ssrc
        assert t.kind == "audio"

        raw = glue.raw_transport(pc)
        assert raw is not None
        assert raw.connected is False
        assert raw.send_rtp(RTP) is False
        assert raw.send_rtcp(RTCP_RR) is False
        assert raw.write_buffer_size() == 0
        assert glue.tap_srtp_datagrams(pc, lambda data: None) is False  # no socket yet
        assert glue.srtp_unprotect(pc) is None
    finally:
        await pc.close()


async def test_raw_transport_over_a_nominated_pair() -> None:
    pc = PC()
    try:
        t = pc.addTransceiver("video", direction="sendonly")
        dtls = t.sender.transport
        tx, rx = srtp_pair()
        udp = FakeUdp()
        dtls._tx_srtp = tx
        dtls.transport._connection._nominated[1] = SimpleNamespace(
            protocol=SimpleNamespace(transport=udp), remote_addr=("192.0.2.1", 5000)
        )
        raw = glue.raw_transport(pc)
        assert raw is not None and raw.connected
        assert raw.send_rtp(RTP) is True
        assert raw.send_rtcp(RTCP_RR) is True
        assert raw.write_buffer_size() == 123
        assert [addr for _, addr in udp.sent] == [("192.0.2.1", 5000)] * 2
        assert rx.unprotect(udp.sent[0][0]) == RTP
        assert rx.unprotect_rtcp(udp.sent[1][0]) == RTCP_RR
        assert raw.sent_packets == 1
        dtls.transport._connection._nominated.clear()
        dtls._tx_srtp = None
    finally:
        await pc.close()


async def test_receive_and_send_takeover_on_a_real_peer_connection() -> None:
    pc = PC()
    try:
        t = pc.addTransceiver("video", direction="sendrecv")
        dtls = t.receiver.transport
        streams: list[glue.Negotiated] = []
        rtp: list[tuple[bytes, int]] = []
        rtcp: list[bytes] = []
        sent_streams: list[glue.Negotiated] = []
        glue.receive_raw(pc, streams.append, lambda d, ms: rtp.append((d, ms)), rtcp.append)
        glue.send_raw(pc, sent_streams.append, rtcp.append)
        glue.receive_raw(pc, streams.append, lambda d, ms: None, rtcp.append)  # idempotent

        # aiortc's receive loop calls these exactly like this
        await dtls._handle_rtp_data(RTP, arrival_time_ms=1)
        await dtls._handle_rtcp_data(RTCP_RR)
        assert [d for d, _ in rtp] == [RTP]
        assert rtcp == [RTCP_RR]

        vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
        rtx = RTCRtpCodecParameters(
            mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
        )
        ext = RTCRtpHeaderExtensionParameters(id=3, uri="urn:ietf:params:rtp-hdrext:sdes:mid")
        rparams = RTCRtpReceiveParameters(
            codecs=[vp8, rtx],
            headerExtensions=[ext],
            muxId="0",
            encodings=[RTCRtpDecodingParameters(ssrc=4242, payloadType=96)],
        )
        await t.receiver.receive(rparams)
        assert len(streams) == 1
        n = streams[0]
        assert (n.mid, n.kind, n.ssrcs) == ("0", "video", [4242])
        assert [(c.mime, c.payload_type, c.clock_rate) for c in n.codecs] == [
            ("video/vp8", 96, 90000)
        ]
        assert n.extensions == {"urn:ietf:params:rtp-hdrext:sdes:mid": 3}
        assert n.rtcp_ssrc == t.sender._ssrc

        sparams = RTCRtpSendParameters(codecs=[vp8], headerExtensions=[ext], muxId="0")
        await t.sender.send(sparams)
        await t.sender.send(sparams)  # started once
        assert len(sent_streams) == 1
        assert sent_streams[0].ssrcs == [t.sender._ssrc]

        t.receiver._handle_disconnect()  # replaced: no-op
        await t.receiver.stop()
        await t.sender.stop()
    finally:
        await pc.close()


async def test_tap_errors_are_counted_not_raised() -> None:
    pc = PC()
    try:
        pc.addTransceiver("audio")
        dtls = pc.getTransceivers()[0].receiver.transport

        def boom(*args: Any) -> None:
            raise ValueError("bad packet")

        glue.receive_raw(pc, lambda n: None, boom, boom)
        rtp_errors, rtcp_errors = STATS.rtp_errors, STATS.rtcp_errors
        await dtls._handle_rtp_data(b"\x80", arrival_time_ms=0)
        await dtls._handle_rtcp_data(b"\x80")
        assert (STATS.rtp_errors, STATS.rtcp_errors) == (rtp_errors + 1, rtcp_errors + 1)
    finally:
        await pc.close()


async def test_bot_side_srtp_tap_and_unprotect() -> None:
    pc = PC()
    try:
        pc.addTransceiver("video", direction="recvonly")
        dtls = pc.getTransceivers()[0].receiver.transport
        conn = dtls.transport._connection
        proto = aioice.ice.StunProtocol(conn)
        passed_on: list[bytes] = []
        # stands in for aioice's STUN/DTLS handling of what is not SRTP
        proto.datagram_received = lambda data, addr: passed_on.append(data)  # type: ignore[method-assign]
        conn._protocols.append(proto)
        tapped: list[bytes] = []
        assert glue.tap_srtp_datagrams(pc, tapped.append) is True
        assert glue.tap_srtp_datagrams(pc, tapped.append) is True  # idempotent
        stun = bytes([0x00, 0x01, 0x00, 0x00]) + bytes(16)
        dtls_record = bytes([22, 0xFE, 0xFD]) + bytes(10)
        tx, rx = srtp_pair()
        srtp = tx.protect(RTP)
        srtcp = tx.protect_rtcp(RTCP_RR)
        for data in (stun, dtls_record, srtp, srtcp):
            proto.datagram_received(data, ("192.0.2.1", 1))
        assert tapped == [srtp]
        assert passed_on == [stun, dtls_record, srtcp]

        dtls._rx_srtp = rx
        unprotect = glue.srtp_unprotect(pc)
        assert unprotect is not None
        assert unprotect(srtp) == RTP
        dtls._rx_srtp = None
        conn._protocols.clear()
    finally:
        await pc.close()


def test_prefer_codecs_finds_the_codecs_we_ask_for() -> None:
    video = {c.mimeType.lower() for c in SENDER.getCapabilities("video").codecs}
    audio = {c.mimeType.lower() for c in SENDER.getCapabilities("audio").codecs}
    assert {"video/vp8", "video/h264"} <= video
    assert "audio/opus" in audio


async def test_prefer_codecs_on_a_transceiver() -> None:
    pc = PC()
    try:
        t = pc.addTransceiver("video")
        glue.prefer_codecs(t, ["video/H264"], {"packetization-mode": "1"})
        glue.prefer_codecs(t, ["video/VP8"])
        glue.prefer_codecs(t, ["video/H264"], {"no-such-fmtp": "x"})  # falls back to the mime
    finally:
        await pc.close()


# --- process-wide patches, in a subprocess --------------------------------------------

SCRIPT = """
import json
import aioice.ice, aiortc.codecs, aiortc.rtcrtpreceiver, aiortc.rtcrtpsender
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from sfu import glue
from sfu.stats import STATS

out = {"before": STATS.transcodes}
glue.forbid_codecs()
vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
calls = [
    ("codecs.get_encoder", lambda: aiortc.codecs.get_encoder(vp8)),
    ("codecs.get_decoder", lambda: aiortc.codecs.get_decoder(opus)),
    ("rtcrtpsender.get_encoder", lambda: aiortc.rtcrtpsender.get_encoder(vp8)),
    ("rtcrtpreceiver.get_decoder", lambda: aiortc.rtcrtpreceiver.get_decoder(vp8)),
]
for name, call in calls:
    try:
        call()
        out[name] = "no error"
    except glue.TranscodeForbidden:
        out[name] = "forbidden"
    except Exception as exc:
        out[name] = type(exc).__name__
    out[name + ".count"] = STATS.transcodes
glue.configure_ice(["127.0.0.1", "::1", "10.0.0.7"])
out["v4"] = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
out["v6"] = aioice.ice.get_host_addresses(use_ipv4=False, use_ipv6=True)
print(json.dumps(out))
"""


def test_forbid_codecs_and_configure_ice_in_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before"] == 0
    assert out["codecs.get_encoder"] == "forbidden"
    assert out["codecs.get_encoder.count"] == 1
    assert out["codecs.get_decoder"] == "forbidden"
    assert out["rtcrtpsender.get_encoder"] == "forbidden"
    assert out["rtcrtpreceiver.get_decoder"] == "forbidden"
    assert out["rtcrtpreceiver.get_decoder.count"] == 4
    assert out["v4"] == ["127.0.0.1", "10.0.0.7"]
    assert out["v6"] == ["::1"]


def test_fast_protect_uses_pylibsrtp_internals_correctly() -> None:
    # glue._Protect reaches into pylibsrtp.Session (_srtp, _cdata, _buffer): same output shape,
    # and what it protects the receiving session unprotects.
    tx, rx = srtp_pair()
    fast = glue._Protect(tx)
    for seq in range(1, 4):
        packet = bytes([0x80, 0x60, 0x00, seq]) + bytes(8) + b"payload" * seq
        protected = fast(packet) if seq % 2 else fast.parts(packet[:12], packet[12:])
        assert rx.unprotect(protected) == packet
    import pytest

    with pytest.raises(ValueError):
        fast(bytes(20000))


def test_srtp_protect_is_found_for_the_c_fanout_loop() -> None:
    # sfu/_fanout.c calls pylibsrtp's own srtp_protect through this address: libsrtp 2's
    # (srtp_t, void *, int *) signature, checked by type before it is handed over.
    from pylibsrtp._binding import ffi, lib

    assert ffi.getctype(ffi.typeof(ffi.addressof(lib, "srtp_protect"))) == glue.SRTP_PROTECT_CTYPE
    assert glue.fast_fanout_ready()
    tx, _ = srtp_pair()
    assert glue.srtp_session_address(tx) == int(ffi.cast("uintptr_t", tx._srtp[0])) != 0


# --- datagram guard -----------------------------------------------------------------------


def test_stun_protocol_hands_non_stun_datagrams_to_the_connection() -> None:
    # guard_datagrams relies on this: every datagram enters through datagram_received, and what
    # is not STUN goes to Connection.data_received (and from there, unguarded, to aiortc's DTLS).
    src = source(aioice.ice.StunProtocol.datagram_received)
    assert "stun.parse_message(data)" in src
    assert "self.receiver.data_received(data" in src
    assert "first_byte = data[0]" in source(aiortc.rtcdtlstransport.RTCDtlsTransport._recv_next)


async def test_guard_drops_bad_datagrams_before_aioice() -> None:
    glue.configure_ice(["127.0.0.1"])
    pc = PC()
    try:
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert glue.guard_datagrams(pc) >= 1
        assert glue.guard_datagrams(pc) == 0  # idempotent
        dtls = pc.getTransceivers()[0].sender.transport
        connection = dtls.transport._connection
        proto = connection._protocols[0]
        queued: list[bytes] = []
        connection.data_received = lambda data, component: queued.append(data)
        before = STATS.bad_datagrams
        peer = ("127.0.0.1", 40000)
        for bad in (b"", b"\x00", b"\x17", b"\x80" * 11, b"\xff" * 40, b"\x05" * 30, "text"):
            proto.datagram_received(bad, peer)
        assert queued == [] and STATS.bad_datagrams == before + 7
        dtls_record = b"\x16\xfe\xfd" + b"\x00" * 20
        srtp = b"\x80\x60" + b"\x00" * 30
        proto.datagram_received(dtls_record, peer)
        proto.datagram_received(srtp, peer)
        assert queued == [dtls_record, srtp]  # before nomination: from anyone (ICE checks run)
        connection._nominated[1] = SimpleNamespace(remote_addr=peer, protocol=proto)
        proto.datagram_received(srtp, ("127.0.0.1", 40001))  # a stranger: never checked
        proto.datagram_received(srtp, peer)
        assert queued == [dtls_record, srtp, srtp] and STATS.bad_datagrams == before + 8
        # another of the browser's pairs that passed its connectivity check is the peer too
        other = ("127.0.0.1", 40002)
        checked = SimpleNamespace(remote_addr=other, protocol=proto, state=aioice.ice.CandidatePair.State.SUCCEEDED)
        failed = SimpleNamespace(remote_addr=("127.0.0.1", 40003), protocol=proto,
                                 state=aioice.ice.CandidatePair.State.FAILED)
        connection._check_list[:] = [checked, failed]
        proto.datagram_received(srtp, other)
        proto.datagram_received(srtp, ("127.0.0.1", 40003))
        assert queued == [dtls_record, srtp, srtp, srtp] and STATS.bad_datagrams == before + 9
        connection._check_list.clear()
        connection._nominated.clear()
    finally:
        await pc.close()


LEAN_SCRIPT = r"""
import json
import aiortc.rtcrtpreceiver as r
from aiortc.rate import RemoteBitrateEstimator
from types import SimpleNamespace
from sfu import glue
transport = SimpleNamespace(state="new")
assert isinstance(r.RemoteBitrateEstimator(), RemoteBitrateEstimator)
glue.lean_receivers()
video = r.RTCRtpReceiver("video", transport)
audio = r.RTCRtpReceiver("audio", transport)
print(json.dumps({
    "video": repr(getattr(video, "_RTCRtpReceiver__remote_bitrate_estimator", "missing")),
    "audio": repr(getattr(audio, "_RTCRtpReceiver__remote_bitrate_estimator", "missing")),
}))
"""


def test_lean_receivers_builds_no_estimator_and_aiortc_handles_none() -> None:
    # glue.lean_receivers replaces the module global aiortc's receiver looks up at construction;
    # the only use of the estimator in the receive path is guarded by "is not None".
    assert "RemoteBitrateEstimator()" in source(aiortc.rtcrtpreceiver.RTCRtpReceiver.__init__)
    assert source(aiortc.rtcrtpreceiver).count("self.__remote_bitrate_estimator") == 4
    assert "if self.__remote_bitrate_estimator is not None:" in source(aiortc.rtcrtpreceiver)
    proc = subprocess.run([sys.executable, "-c", LEAN_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"video": "None", "audio": "None"}


# --- mDNS / peer-reflexive ICE (glue.robust_mdns_ice; exercised with real aioice agents in
# tests/integration/test_glue_mdns.py) ------------------------------------------------------


def test_connection_internals_used_by_robust_mdns_ice() -> None:
    import aioice.mdns

    conn = aioice.ice.Connection
    own = glue.aioice_original  # aioice's methods even after another test installed glue's
    assert params(own("add_remote_candidate")) == ["self", "remote_candidate"]
    assert params(conn._add_remote_candidate) == ["self", "remote_candidate", "network_host"]
    assert params(own("check_incoming")) == ["self", "message", "addr", "protocol"]
    for name in ("_end_remote_candidates", "_remote_candidates_expected", "_check_periodic",
                 "_check_list_maybe_fail", "connect"):
        assert params(own(name)) == ["self"], name
    init = source(conn.__init__)
    for attr in ("_closing", "_transport_policy", "_remote_candidates_end",
                 "_remote_candidates_resolving", "_remote_candidates", "_check_list_done", "_nominated"):
        assert f"self.{attr}" in init, attr
    # aioice's own mDNS branch: the one glue replaces (resolve inside add_remote_candidate)
    assert "mdns_protocol.resolve(remote_candidate.host)" in source(own("add_remote_candidate"))
    # peer-reflexive candidates are learned in check_incoming, appended to _remote_candidates
    assert 'type="prflx"' in source(own("check_incoming"))
    # connect() polls _check_periodic and fails at once on an empty check list
    assert "self._check_periodic()" in source(own("connect"))
    assert "self._remote_candidates_expected()" in source(own("_check_periodic"))
    assert aioice.ice.TransportPolicy.RELAY
    assert params(aioice.ice.get_or_create_mdns_protocol) == ["subscriber"]
    assert params(aioice.ice.unref_mdns_protocol) == ["subscriber"]
    assert params(aioice.mdns.MDnsProtocol.resolve) == ["self", "hostname", "timeout"]
    assert (aioice.mdns.MDNS_ADDRESS, aioice.mdns.MDNS_PORT) == ("224.0.0.251", 5353)
    assert aioice.mdns.is_mdns_hostname("3f1d2c9e-0000-4000-8000-000000000000.local")


async def test_answer_as_dtls_server_turns_actpass_into_passive() -> None:
    """The DTLS role glue sets: ``RTCDtlsTransport._role`` ("auto" until an offer or answer
    decides it), ``_set_role``, and createAnswer writing ``a=setup:`` from ``_role``."""
    assert "self._role = \"auto\"" in source(aiortc.rtcdtlstransport.RTCDtlsTransport.__init__)
    assert params(aiortc.rtcdtlstransport.RTCDtlsTransport._set_role) == ["self", "role"]
    assert "media.dtls.role = dtlsTransport._role" in source(aiortc.rtcpeerconnection.RTCPeerConnection.createAnswer)
    offerer, answerer = PC(), PC()
    try:
        offerer.addTransceiver("video", direction="sendonly")
        offer = await offerer.createOffer()
        assert "a=setup:actpass" in offer.sdp
        await answerer.setRemoteDescription(offer)
        assert glue.answer_as_dtls_server(answerer) == 1
        assert glue.answer_as_dtls_server(answerer) == 0  # already decided
        answer = await answerer.createAnswer()
        assert "a=setup:passive" in answer.sdp and "a=setup:active" not in answer.sdp
        assert answerer.getTransceivers()[0].receiver.transport._role == "server"
    finally:
        await offerer.close()
        await answerer.close()


async def test_offer_as_dtls_client_makes_the_answerer_the_server() -> None:
    """glue.offer_as_dtls_client: aiortc applies the answer's ``a=setup:passive`` as its own client
    role (setRemoteDescription of an answer sets ``_role`` from ``media.dtls.role``), and an aiortc
    answerer answers an ``active`` offer ``passive`` (it takes the server role for an offer whose
    role is ``client``)."""
    assert 'role="server" if media.dtls.role == "client" else "client"' in source(
        aiortc.rtcpeerconnection.RTCPeerConnection.setRemoteDescription)
    assert 'media.dtls.role == "client"' in source(aiortc.rtcpeerconnection.RTCPeerConnection.setRemoteDescription)
    offerer, answerer = PC(), PC()
    try:
        offerer.addTransceiver("video", direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        sdp = glue.offer_as_dtls_client(offerer, offerer.localDescription.sdp)
        assert "a=setup:active" in sdp and "a=setup:actpass" not in sdp
        assert glue.offer_as_dtls_client(offerer, sdp) == sdp  # idempotent; the repeats installed once
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        answer = await answerer.createAnswer()
        assert "a=setup:passive" in answer.sdp
        assert answerer.getTransceivers()[0].receiver.transport._role == "server"
        await offerer.setRemoteDescription(answer)
        assert offerer.getTransceivers()[0].receiver.transport._role == "client"
    finally:
        await offerer.close()
        await answerer.close()


def test_dtls_internals_used_to_repeat_the_client_hello() -> None:
    """glue._repeat_client_hello wraps the ICE transport's ``_send`` (an instance attribute: the
    aioice connection's ``send``, what the DTLS transport writes every handshake datagram with)
    and reads the DTLS transport's received-packet count."""
    dtls = aiortc.rtcdtlstransport.RTCDtlsTransport
    assert "self.__rx_packets = 0" in source(dtls.__init__)
    assert "self.__rx_packets += 1" in source(dtls._recv_next)
    assert "await self.transport._send(data)" in source(dtls._write_ssl)
    assert "self._send = self._connection.send" in source(aiortc.rtcicetransport.RTCIceTransport.__init__)
    assert params(aioice.ice.Connection.send) == ["self", "data"]
    # ... and skips a repeat while the peer's answer waits, unread, in the connection's queue
    assert "self._queue.put_nowait((data, component))" in source(aioice.ice.Connection.data_received)
    assert "self._connection = " in source(aiortc.rtcicetransport.RTCIceTransport.__init__)


def test_connection_internals_used_by_restart_ice() -> None:
    """glue.restart_ice resets these attributes of a live aioice Connection and runs its own
    connect() again; aiortc's gatherer keeps its own end-of-candidates latch."""
    init = source(aioice.ice.Connection.__init__)
    for attr in ("_closing", "_closed", "_check_list", "_check_list_done", "_check_list_state",
                 "_nominated", "_nominating", "_query_consent_task", "_remote_candidates",
                 "_remote_candidates_end", "_local_username", "_local_password", "_protocols"):
        assert f"self.{attr}" in init, attr
    assert "self.remote_username" in init and "self.remote_password" in init
    assert params(aioice.ice.validate_username) == ["value"]
    assert params(aioice.ice.validate_password) == ["value"]
    own_connect = source(glue.aioice_original("connect"))
    # connect() re-pairs the remote candidates and, once done, starts consent freshness again
    assert "self._pair_remote_candidate(remote_candidate)" in own_connect
    assert "self._query_consent_task = asyncio.create_task(self.query_consent())" in own_connect
    assert "self.__iceGatherer._remote_candidates_end" in source(
        aiortc.rtcicetransport.RTCIceTransport.addRemoteCandidate)
    assert "return self.__iceGatherer" in source(aiortc.rtcicetransport.RTCIceTransport)
    assert "task" in aioice.ice.CandidatePair.__init__.__code__.co_names or \
        "self.task" in source(aioice.ice.CandidatePair.__init__)
