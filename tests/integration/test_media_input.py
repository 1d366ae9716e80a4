"""Bad media input: a publisher that sends malformed RTP and RTCP (after SRTP, so the SFU really
parses it) has it counted and dropped; its connection and every other lesson go on."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pylibsrtp

from classroom.server import Server
from sfu import glue
from sfu.stats import STATS
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


async def test_stray_datagrams_at_a_media_port_hurt_nobody(server: Server) -> None:
    """Issue #14, item 1: an empty UDP datagram (from any address) at a publisher's ICE port used
    to end aiortc's DTLS receive loop (IndexError) and that publisher's media for good."""
    lead = ClassroomPeer(server.base_url, tok(server, "stray", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "stray", "r1", "remote"))
    try:
        await lead.connect()
        await remote.connect()
        answer = await lead.publish([(PatternTrack(), "teacher")])
        ports = _candidate_ports(answer["sdp"])
        assert ports
        await remote.wait_frames("video", 5)
        assert remote.sub is not None and remote.sub.remoteDescription is not None
        # the subscriber side too (its socket is connect()-ed to the peer, so the kernel already
        # drops a stranger's datagrams there; only the publisher's port counts them)
        publisher_ports = len(ports)
        ports |= _candidate_ports(remote.sub.remoteDescription.sdp)
        before = STATS.bad_datagrams
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            junk = [b"", b"\x00", b"\x16", b"\x80", b"\x80\xc8", b"\xff" * 100, os.urandom(200),
                    b"\x16\xfe\xfd" + os.urandom(60), b"\x80\x60" + os.urandom(100)]
            for port in ports:
                for data in junk:
                    sock.sendto(data, ("127.0.0.1", port))
        finally:
            sock.close()
        await asyncio.sleep(0.5)
        # The publisher's media still reaches the remote classroom...
        mid = remote.mids("video")[0]
        n = remote.frames[mid]
        await remote.wait_frames("video", n + 15, timeout=5)
        # ...because the junk never reached aiortc (counted instead).
        assert STATS.bad_datagrams >= before + 6 * publisher_ports
    finally:
        await lead.close()
        await remote.close()
