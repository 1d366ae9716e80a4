"""``glue.restart_ice`` on a connection whose RawTransport sends on a connect()-ed duplicate of
the ICE socket (every subscriber connection does, once it has sent media): a connected UDP socket
receives from its peer only, so the peer's new-generation checks from another socket (Chromium
gathers new sockets for ``restartIce()``) never reached aioice. The restart disconnects the
socket (same address and port), the RawTransport sends with ``sendto`` meanwhile, and a check
from a new socket with the new credentials is answered. Real aiortc peers on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import aioice.stun as stun
import pytest
from aiortc import RTCPeerConnection

from sfu import glue


@pytest.fixture(autouse=True)
def loopback_ice() -> None:
    glue.configure_ice(["127.0.0.1"])


async def connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection]:
    client, server = RTCPeerConnection(), RTCPeerConnection()
    client.addTransceiver("video", direction="recvonly")
    await client.setLocalDescription(await client.createOffer())
    await server.setRemoteDescription(client.localDescription)
    glue.answer_as_dtls_server(server)
    await server.setLocalDescription(await server.createAnswer())
    glue.guard_datagrams(server)
    await client.setRemoteDescription(server.localDescription)
    for _ in range(500):
        if server.connectionState == client.connectionState == "connected":
            return client, server
        await asyncio.sleep(0.02)
    raise AssertionError((client.connectionState, server.connectionState))


def ice_socket(pc: RTCPeerConnection) -> Any:
    conn = pc.getTransceivers()[0].receiver.transport.transport._connection
    return conn._protocols[0].transport.get_extra_info("socket")


def binding_request(username: str, pwd: str) -> bytes:
    msg = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    msg.attributes["USERNAME"] = username
    msg.attributes["PRIORITY"] = 1845501695
    msg.attributes["ICE-CONTROLLING"] = 1
    msg.attributes["USE-CANDIDATE"] = None
    msg.add_message_integrity(pwd.encode())
    msg.add_fingerprint()
    return bytes(msg)


RTP = struct.pack("!BBHII", 0x80, 96, 1, 0, 1234) + b"\x10" * 100


async def test_a_check_from_a_new_socket_is_answered_after_the_restart() -> None:
    client, server = await connected_pair()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        raw = glue.raw_transport(server)
        assert raw is not None and raw.send_rtp(RTP)  # the first send connects the socket
        sock = ice_socket(server)
        local = sock.getsockname()
        assert sock.getpeername()  # connected: nothing but the peer reaches aioice now
        restart = glue.restart_ice(server, "nv+c", "0123456789abcdefghijklmn")
        with pytest.raises(OSError):
            sock.getpeername()  # disconnected ...
        assert sock.getsockname() == local  # ... on the same address and port
        assert raw.send_rtp(RTP)  # media goes on meanwhile, with sendto
        probe.bind(("127.0.0.1", 0))
        probe.setblocking(False)
        loop = asyncio.get_running_loop()
        probe.sendto(binding_request(f"{restart.ufrag}:nv+c", restart.pwd), local)
        answer = stun.parse_message(await asyncio.wait_for(loop.sock_recv(probe, 2048), 2))
        assert answer.message_class == stun.Class.RESPONSE
        assert answer.attributes["XOR-MAPPED-ADDRESS"] == probe.getsockname()
    finally:
        probe.close()
        await client.close()
        await server.close()
