"""Bad media input: a publisher that sends malformed RTP and RTCP (after SRTP, so the SFU really
parses it) has it counted and dropped; its connection and every other lesson go on."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pylibsrtp
import pytest

from classroom.server import Server, start_server
from sfu import glue
from sfu.stats import STATS
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack


def tok(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_malformed_rtp_and_rtcp_are_counted_and_dropped(server: Server) -> None:
    good_lead = ClassroomPeer(server.base_url, tok(server, "good", "lead", "lead"))
    good_remote = ClassroomPeer(server.base_url, tok(server, "good", "r1", "remote"))
    bad_lead = ClassroomPeer(server.base_url, tok(server, "bad", "lead", "lead"))
    bad_remote = ClassroomPeer(server.base_url, tok(server, "bad", "r1", "remote"))
    try:
        for p in (good_lead, good_remote, bad_lead, bad_remote):
            await p.connect()
        await good_lead.publish([(PatternTrack(), "teacher")])
        await bad_lead.publish([(PatternTrack(), "teacher")])
        await good_remote.wait_frames("video", 5)
        await bad_remote.wait_frames("video", 5)
        assert bad_lead.pub is not None
        raw = glue.raw_transport(bad_lead.pub)
        assert raw is not None
        ssrc = bad_lead.pub.getTransceivers()[0].sender._ssrc
        rtcp_errors, rtp_errors = STATS.rtcp_errors, STATS.rtp_errors
        garbage_rtp = [
            struct.pack("!BBHII", 0x8F, 96, 1, 1, ssrc),  # 15 CSRCs announced, none present
            struct.pack("!BBHII", 0x90, 96, 2, 2, ssrc) + b"\xbe\xde\xff\xff",  # extension too long
            struct.pack("!BBHII", 0xA0, 96, 3, 3, ssrc) + b"\x00",  # zero padding length
            struct.pack("!BBHII", 0x80, 96, 4, 4, 0xDEAD) + os.urandom(50),  # an SSRC nobody announced
            struct.pack("!BBHII", 0x80, 96, 5, 5, ssrc),  # no payload at all
        ]
        sent = 0
        for packet in garbage_rtp:
            try:
                sent += raw.send_rtp(packet)
            except pylibsrtp.Error:
                pass  # libsrtp refuses to protect it: such a packet can never reach the SFU
        assert sent >= 1
        garbage_rtcp = [
            b"\x80\xc8\x00\x01" + os.urandom(4),  # an SR that is too short
            b"\x81\xc9\x00\x07" + os.urandom(8),  # RR whose block runs past the end
            b"\x8f\xcd\x00\x02" + os.urandom(8) + b"\x80\xce\xff\xff",  # length beyond the datagram
        ]
        for packet in garbage_rtcp:
            raw.send_rtcp(packet)
        await asyncio.sleep(1.0)
        assert STATS.rtp_errors > rtp_errors
        assert STATS.rtcp_errors > rtcp_errors
        # Both lessons go on, the bad one included (its connection survived the garbage).
        for remote in (good_remote, bad_remote):
            mid = remote.mids("video")[0]
            n = remote.frames[mid]
            await remote.wait_frames("video", n + 10)
    finally:
        for p in (good_lead, good_remote, bad_lead, bad_remote):
            await p.close()


def _candidate_ports(sdp: str) -> set[int]:
    ports = set()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if parts[2].lower() == "udp":
                ports.add(int(parts[5]))
    return ports


JUNK = [b"", b"\x00", b"\x16", b"\x80", b"\x80\xc8", b"\xff" * 100, os.urandom(200),
        b"\x16\xfe\xfd" + os.urandom(60), b"\x80\x60" + os.urandom(100)]
# of JUNK, what the guard (glue.guard_datagrams) drops whoever sends it: empty, 1-2 bytes, not
# DTLS/RTP by its first byte (b"\x00" is STUN by its first byte: the one port's demultiplexer
# drops it as bad STUN before the guard, a per-connection socket's guard drops it)
GUARD_DROPS_FROM_THE_PEER = 5


@pytest.fixture(params=[True, False], ids=["one-media-port", "socket-per-connection"])
async def either_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    """A server with ``media.udp_mux`` on (the default) and one with it off."""
    config = server_config(tmp_path)
    config.media.udp_mux = request.param
    srv = await start_server(config)
    assert (srv.extras.get("udp_mux") is not None) is request.param
    try:
        yield srv
    finally:
        await srv.stop()


def _mux_drops() -> int:
    return STATS.mux_unknown_address + STATS.mux_unknown_ufrag + STATS.mux_bad_stun


async def test_stray_datagrams_at_a_media_port_hurt_nobody(either_server: Server) -> None:
    """Issue #14, item 1: an empty UDP datagram (from any address) at a publisher's ICE port used
    to end aiortc's DTLS receive loop (IndexError) and that publisher's media for good.

    Two senders: a stranger, and the publisher's own ICE socket (the address its checks came
    from). On the node's one media port (``media.udp_mux``, the default) the stranger's datagrams
    never reach a connection: the demultiplexer drops them by address and counts them
    (``classroom_mux_*_total``); the peer's own junk reaches its connection and the guard drops it
    (``classroom_bad_datagrams_total``). With a socket per connection the guard drops both."""
    server = either_server
    lead = ClassroomPeer(server.base_url, tok(server, "stray", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "stray", "r1", "remote"))
    shared_port = server.extras.get("udp_mux") is not None
    try:
        await lead.connect()
        await remote.connect()
        answer = await lead.publish([(PatternTrack(), "teacher")])
        ports = _candidate_ports(answer["sdp"])
        assert ports
        await remote.wait_frames("video", 5)
        assert remote.sub is not None and remote.sub.remoteDescription is not None
        # the subscriber side too (per connection its socket is connect()-ed to the peer, so the
        # kernel already drops a stranger's datagrams there; only the publisher's port counts them)
        publisher_ports = len(ports)
        ports |= _candidate_ports(remote.sub.remoteDescription.sdp)
        if shared_port:
            assert len(ports) == 1, f"one media port for both connections: {ports}"
        guard_before, mux_before = STATS.bad_datagrams, _mux_drops()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for port in ports:
                for data in JUNK:
                    sock.sendto(data, ("127.0.0.1", port))
        finally:
            sock.close()
        await asyncio.sleep(0.5)
        if shared_port:
            assert _mux_drops() >= mux_before + len(JUNK) * len(ports)
            assert STATS.bad_datagrams == guard_before  # none of it reached a connection
        else:
            assert STATS.bad_datagrams >= guard_before + 6 * publisher_ports
        # the same junk from the publisher's own ICE socket: past the demultiplexer, to the guard
        assert lead.pub is not None
        guard_before = STATS.bad_datagrams
        fds = glue.ice_socket_fds(lead.pub)
        assert fds
        for fd in fds:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, fileno=os.dup(fd)) as own:
                for port in _candidate_ports(answer["sdp"]):
                    for data in JUNK:
                        own.sendto(data, ("127.0.0.1", port))
        await asyncio.sleep(0.5)
        assert STATS.bad_datagrams >= guard_before + GUARD_DROPS_FROM_THE_PEER
        # The publisher's media still reaches the remote classroom: no junk reached aiortc.
        mid = remote.mids("video")[0]
        n = remote.frames[mid]
        await remote.wait_frames("video", n + 15, timeout=5)
    finally:
        await lead.close()
        await remote.close()
