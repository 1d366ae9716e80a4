"""Contract of the node's shared media port (``glue.UdpMux``) with aioice/aiortc: the private
names it relies on, and two real aiortc peer connections in this process, one of them on the
shared port, connecting through it (ICE, DTLS), with strangers' datagrams dropped and counted."""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any

import aioice.candidate
import aioice.ice
import aioice.stun
import aiortc.rtcdtlstransport
import aiortc.rtcicetransport
import aiortc.rtp
import pytest
from aiortc import RTCPeerConnection

from sfu import glue
from sfu.stats import STATS


def params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def source(obj: Any) -> str:
    return inspect.getsource(obj)


def test_aioice_gathers_host_candidates_through_get_component_candidates() -> None:
    original = glue.aioice_original("get_component_candidates")
    assert params(original) == ["self", "component", "addresses", "timeout"]
    assert "self.get_component_candidates(component=component, addresses=addresses)" in source(
        aioice.ice.Connection.gather_candidates)
    assert "create_datagram_endpoint" in source(original)  # what the mux replaces
    assert "relayed_candidate(" in source(original)  # TURN: still aioice's, given no addresses
    assert "for address in addresses:" in source(original)
    assert params(aioice.ice.server_reflexive_candidate) == ["protocol", "stun_server"]
    assert params(aioice.candidate.candidate_foundation) == ["candidate_type", "candidate_transport", "base_address"]
    assert params(aioice.candidate.candidate_priority) == ["candidate_component", "candidate_type",
                                                           "local_pref"]


def test_stun_protocol_shape_the_mux_builds_on() -> None:
    cls = aioice.ice.StunProtocol
    assert params(cls.__init__) == ["self", "receiver"]
    for name in ("connection_made", "connection_lost", "datagram_received", "send_stun", "request", "close"):
        assert callable(getattr(cls, name)), name
    assert "self.transport.sendto(bytes(message), addr)" in source(cls.send_stun)
    assert "self.transport.sendto(data, addr)" in source(cls.send_data)
    assert "self.transport.close()" in source(cls.close)
    assert "self.receiver.protocol_lost(self)" in source(cls.connection_lost)
    assert "self.transactions[request.transaction_id] = transaction" in source(cls.request)
    assert "self.__protocol.send_stun(self.__request, self.__addr)" in source(aioice.stun.Transaction)
    # the mux checks a request's integrity with the password aioice checks it with, before aioice
    assert "message.check_message_integrity(self.local_password" in source(aioice.ice.Connection.request_received)
    assert "await protocol.close()" in source(aioice.ice.Connection.close)


def test_gatherer_gathers_once_from_state_new() -> None:
    src = source(aiortc.rtcicetransport.RTCIceGatherer.gather)
    assert 'if self.__state == "new":' in src and "self._connection.gather_candidates()" in src


def test_a_port_in_use_names_the_setting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(glue.UdpMuxError, match="media.udp_port"):
            glue.UdpMux(["127.0.0.1"], taken.getsockname()[1])


def test_the_shared_port_sends_with_dont_fragment() -> None:
    """DF on the shared IPv4 socket: the kernel then writes IP ID 0 instead of hashing one per
    datagram (an unconnected socket's cost); PROBE: the learned path MTU is not applied."""
    mux = glue.UdpMux(["127.0.0.1"], 0)
    try:
        sock = mux.sockets["127.0.0.1"].sock
        assert sock.getsockopt(socket.IPPROTO_IP, glue.IP_MTU_DISCOVER) == glue.IP_PMTUDISC_PROBE
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.settimeout(2)
            sock.sendto(b"\x80" + bytes(1199), peer.getsockname())  # an RTP-sized datagram still goes
            assert len(peer.recv(2048)) == 1200
    finally:
        mux.close()


async def _connect(server: RTCPeerConnection, client: RTCPeerConnection, mux: glue.UdpMux) -> None:
    server.addTransceiver("video", direction="sendonly")
    server.addTransceiver("audio", direction="sendonly")
    glue.use_media_port(server, mux)
    await server.setLocalDescription(await server.createOffer())
    await client.setRemoteDescription(server.localDescription)
    await client.setLocalDescription(await client.createAnswer())
    await server.setRemoteDescription(client.localDescription)
    await wait_connected(server, client)


async def wait_connected(server: RTCPeerConnection, client: RTCPeerConnection) -> None:
    """Both ends ``connected`` within 10 s, or an AssertionError saying where they are."""
    for _ in range(200):
        if server.connectionState == "connected" and client.connectionState == "connected":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not connected: {server.connectionState} / {client.connectionState}")


def _request(username: str, key: bytes) -> bytes:
    m = aioice.stun.Message(message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST)
    m.attributes["USERNAME"] = username
    m.add_message_integrity(key)
    return bytes(m)


async def test_two_peer_connections_connect_through_the_shared_port() -> None:
    glue.configure_ice(["127.0.0.1"])
    mux = glue.UdpMux(["127.0.0.1"], 0)
    (port,) = mux.ports.values()
    server, client = RTCPeerConnection(), RTCPeerConnection()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    try:
        await _connect(server, client, mux)
        sdp = server.localDescription.sdp
        ports = {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}
        assert ports == {port}  # every host candidate the server offers carries the one port
        assert glue.media_port_of(server) == [("127.0.0.1", port)]
        assert glue.media_port_of(client) == []  # a client in the same process keeps its own socket
        shared = mux.sockets["127.0.0.1"]
        conn = server.getTransceivers()[0].receiver.transport.transport._connection
        assert shared.lookup(conn.local_username) is not None
        client_conn = client.getTransceivers()[0].receiver.transport.transport._connection
        client_addr = client_conn._nominated[1].local_addr
        assert client_addr in shared.by_address  # learned from a valid check
        raw = glue.raw_transport(server)
        assert raw is not None and raw.send_rtp(b"\x80\x60\x00\x01" + b"\x00" * 8 + b"payload")
        assert raw.egress.batched == 16  # the C loop sends it with the subscriber's address

        before = (STATS.mux_unknown_ufrag, STATS.mux_unknown_address, STATS.mux_bad_stun)
        target = ("127.0.0.1", port)
        stranger.sendto(_request("nobody:x", b"k" * 22), target)  # no connection has that ufrag
        stranger.sendto(_request(f"{conn.local_username}:x", b"wrong password 22 char"), target)  # bad integrity
        stranger.sendto(b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + b"x" * 12, target)  # truncated STUN
        stranger.sendto(b"\x16\xfe\xfd" + b"\x00" * 30, target)  # DTLS from an address no check came from
        stranger.sendto(b"\x80\x60" + b"\x00" * 30, target)  # SRTP likewise
        stranger.sendto(b"", target)
        for _ in range(50):
            after = (STATS.mux_unknown_ufrag, STATS.mux_unknown_address, STATS.mux_bad_stun)
            if after == (before[0] + 1, before[1] + 3, before[2] + 2):
                break
            await asyncio.sleep(0.02)
        assert after == (before[0] + 1, before[1] + 3, before[2] + 2)
        assert stranger.getsockname() not in shared.by_address
        assert server.connectionState == "connected"

        # ICE restart: the new ufrag finds the connection, the old one no longer does
        old = conn.local_username
        glue.restart_ice(server, "newpeer", "p" * 22)
        assert shared.lookup(old) is None and shared.lookup(conn.local_username) is not None
    finally:
        stranger.close()
        await client.close()
        await server.close()
    assert mux.connections() == 0 and not mux.sockets["127.0.0.1"].by_address
    mux.close()


def _without_candidates(sdp: str) -> str:
    """An answer whose candidates cannot be reached (Firefox's ``.local`` names nobody resolves
    here): the offerer learns the peer only from its checks (peer-reflexive)."""
    return "".join(line + "\r\n" for line in sdp.splitlines()
                   if not line.startswith(("a=candidate:", "a=end-of-candidates")))


async def test_an_early_check_reaches_the_transport_bundle_keeps() -> None:
    """Issue #19 (Firefox's tab at ICE "connecting"): an offer without max-bundle gives every
    transceiver an ICE transport with the same ufrag; the answerer's first checks arrive before
    the offerer has the answer, and the answer's BUNDLE then closes every transport but the
    primary one. Here the worst order: the transport BUNDLE closes registered first. The check
    must reach the primary transport too, and the address it came from must stay routed."""
    from aiortc import RTCSessionDescription

    glue.configure_ice(["127.0.0.1"])
    mux = glue.UdpMux(["127.0.0.1"], 0)
    shared = mux.sockets["127.0.0.1"]
    server, client = RTCPeerConnection(), RTCPeerConnection()  # default (balanced): a transport per kind
    try:
        video = server.addTransceiver("video", direction="sendonly")
        audio = server.addTransceiver("audio", direction="sendonly")
        assert video.receiver.transport is not audio.receiver.transport
        glue.use_media_port(server, mux)
        await server.setLocalDescription(await server.createOffer())
        primary = video.receiver.transport.transport._connection  # mid 0: the one BUNDLE keeps
        secondary = audio.receiver.transport.transport._connection
        assert primary.local_username == secondary.local_username
        same = shared.by_ufrag[primary.local_username]
        assert len(same) == 2
        same.sort(key=lambda p: p.receiver is primary)  # the doomed transport first
        assert same[0].receiver is secondary

        await client.setRemoteDescription(server.localDescription)
        await client.setLocalDescription(await client.createAnswer())  # the client starts checking
        client_conn = client.getTransceivers()[0].receiver.transport.transport._connection
        for _ in range(100):  # its check reached the port (and was answered)
            if shared.by_address:
                break
            await asyncio.sleep(0.02)
        assert shared.by_address, "no check from the client reached the shared port"
        answer = _without_candidates(client.localDescription.sdp)
        await server.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert shared.by_ufrag[primary.local_username] == [p for p in same if p.receiver is primary]
        assert all(p.receiver is primary for p in shared.by_address.values())  # handed over
        await wait_connected(server, client)
        assert client_conn._nominated[1].local_addr in shared.by_address
    finally:
        await client.close()
        await server.close()
    assert mux.connections() == 0 and not shared.by_address
    mux.close()


async def test_the_sfu_gives_a_peer_connection_one_ice_transport() -> None:
    """sfu.peer's connections are max-bundle for real (aiortc compares with the enum; the string
    "max-bundle" silently meant a transport per transceiver): one ufrag, one transport."""
    from sfu.peer import PeerSettings, _new_pc

    pc = _new_pc(PeerSettings())
    a = pc.addTransceiver("video", direction="sendonly")
    b = pc.addTransceiver("audio", direction="sendonly")
    c = pc.addTransceiver("video", direction="sendonly")
    try:
        assert a.receiver.transport is b.receiver.transport is c.receiver.transport
    finally:
        await pc.close()


def test_the_direct_srtp_path_relies_on_what_aiortc_does_with_srtp() -> None:
    """``_MuxSocket.dispatch`` hands a publisher's SRTP to the tap without aioice's queue: it must
    do what ``RTCDtlsTransport._recv_next`` does for it (count, unprotect, hand on)."""
    body = source(aiortc.rtcdtlstransport.RTCDtlsTransport._recv_next)
    assert "self.__rx_bytes += len(data)" in body and "self.__rx_packets += 1" in body
    assert "data = self._rx_srtp.unprotect(data)" in body
    assert "first_byte > 127 and first_byte < 192 and self._rx_srtp" in body
    assert "return len(msg) >= 2 and msg[1] >= 192 and msg[1] <= 208" in source(aiortc.rtp.is_rtcp)
    assert "self._queue.put_nowait((data, component))" in source(aioice.ice.Connection.data_received)
    assert glue._DTLS_CONNECTED is aiortc.rtcdtlstransport.State.CONNECTED


async def test_a_publishers_srtp_goes_from_the_shared_port_to_the_tap_directly() -> None:
    glue.configure_ice(["127.0.0.1"])
    mux = glue.UdpMux(["127.0.0.1"], 0)
    server, client = RTCPeerConnection(), RTCPeerConnection()
    got: list[bytes] = []
    rtcp: list[bytes] = []
    try:
        server.addTransceiver("video", direction="recvonly")
        glue.use_media_port(server, mux)
        await server.setLocalDescription(await server.createOffer())
        glue.receive_raw(server, lambda n: None, lambda d, ms: got.append(d), rtcp.append)
        await client.setRemoteDescription(server.localDescription)
        await client.setLocalDescription(await client.createAnswer())
        await server.setRemoteDescription(client.localDescription)
        glue.receive_raw(server, lambda n: None, lambda d, ms: got.append(d), rtcp.append)
        await wait_connected(server, client)
        sending = client.getTransceivers()[0].sender.transport
        receiving = server.getTransceivers()[0].receiver.transport
        (proto,) = [p for p in receiving.transport._connection._protocols if isinstance(p, glue._MuxProtocol)]
        packets = [b"\x80\x60" + seq.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x12\x34" + bytes([seq]) * 100
                   for seq in range(1, 21)]
        for p in packets:
            await sending._send_rtp(p)
            await asyncio.sleep(0.005)
        rr = b"\x81\xc9\x00\x07" + b"\x00\x00\x00\x09" + b"\x00\x00\x12\x34" + b"\x00" * 20
        await sending._send_rtp(rr)  # (aiortc protects SRTCP for an RTCP packet)
        for _ in range(100):
            if len(got) == len(packets) and rtcp:
                break
            await asyncio.sleep(0.02)
        assert got == packets  # in order, decrypted, each once
        assert rtcp == [rr]  # SRTCP still through aiortc's own loop
        assert proto.direct_rtp is not None and proto.direct_packets >= len(packets) - 1  # the first one: aiortc's loop
        assert receiving._RTCDtlsTransport__rx_packets >= len(packets) + 1  # getStats() still counts them
        assert receiving._rx_srtp is not None and receiving._state is glue._DTLS_CONNECTED
    finally:
        await client.close()
        await server.close()
        mux.close()
