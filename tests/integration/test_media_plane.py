"""The media plane with real aiortc peers: keyframes for late joiners, NACK retransmission from
the SFU's cache, sender reports, and lessons isolated from one another."""

from __future__ import annotations

import asyncio
import time

from classroom.server import Server
from sfu.stats import STATS
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


def tok(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_late_joiner_gets_a_keyframe_quickly(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "kf", "lead", "lead"))
    early = ClassroomPeer(server.base_url, tok(server, "kf", "r1", "remote"))
    late = ClassroomPeer(server.base_url, tok(server, "kf", "r2", "remote"))
    try:
        await lead.connect()
        await early.connect()
        await lead.publish([(PatternTrack(), "teacher")])
        await early.wait_frames("video", 30)  # the lesson runs; the first keyframe is long past
        requests_before = STATS.keyframe_requests_sent
        t0 = time.monotonic()
        await late.connect()
        await late.wait_frames("video", 1, timeout=5)
        elapsed = time.monotonic() - t0
        assert elapsed < 1.5, f"late joiner waited {elapsed:.2f}s for its first frame"
        assert STATS.keyframe_requests_sent > requests_before  # a PLI went to the publisher
        await late.wait_frames("video", 10)
    finally:
        for p in (lead, early, late):
            await p.close()


async def test_nack_is_answered_from_the_cache(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "nack", "lead", "lead"))
    lossy = ClassroomPeer(server.base_url, tok(server, "nack", "r1", "remote"), loss=0.05)
    try:
        await lead.connect()
        await lossy.connect()
        nacks, retrans = STATS.nacks_received, STATS.retransmitted_packets
        await lead.publish([(PatternTrack(640, 480), "teacher")])
        await lossy.wait_frames("video", 60, timeout=30)
        assert STATS.nacks_received > nacks
        assert STATS.retransmitted_packets > retrans
        # Frames keep coming despite 5% loss: the retransmissions repaired them.
        mid = lossy.mids("video")[0]
        n = lossy.frames[mid]
        await asyncio.sleep(2)
        assert lossy.frames[mid] > n + 20
    finally:
        await lead.close()
        await lossy.close()


async def test_sender_reports_reach_subscribers(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "sr", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "sr", "r1", "remote"))
    try:
        await lead.connect()
        await remote.connect()
        before = STATS.rtcp_sr_sent
        remb_before = STATS.remb_sent
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await remote.wait_frames("audio", 10)
        await asyncio.sleep(2.5)
        assert STATS.rtcp_sr_sent > before
        assert STATS.remb_sent > remb_before  # RR + REMB went to the publisher
        assert lead.pub is not None
        pub_stats = await lead.pub.getStats()
        assert [s for s in pub_stats.values() if s.type == "remote-inbound-rtp"], "publisher saw no RR"
        assert remote.sub is not None
        stats = await remote.sub.getStats()
        remote_outbound = [s for s in stats.values() if s.type == "remote-outbound-rtp"]
        assert remote_outbound, "the subscriber saw no sender report"
    finally:
        await lead.close()
        await remote.close()


async def test_three_lessons_do_not_cross_talk(server: Server) -> None:
    sizes = {"a": (320, 240), "b": (256, 192), "c": (160, 120)}
    peers: list[ClassroomPeer] = []
    remotes: dict[str, list[ClassroomPeer]] = {}
    before = STATS.counters()
    try:
        for lesson, (w, h) in sizes.items():
            lead = ClassroomPeer(server.base_url, tok(server, lesson, "lead", "lead"))
            await lead.connect()
            peers.append(lead)
            remotes[lesson] = []
            for i in range(2):
                r = ClassroomPeer(server.base_url, tok(server, lesson, f"r{i}", "remote"))
                await r.connect()
                peers.append(r)
                remotes[lesson].append(r)
            await lead.publish([(PatternTrack(w, h), "teacher"), (ToneTrack(), "teacher")])
        for lesson, (w, h) in sizes.items():
            for r in remotes[lesson]:
                await r.wait_frames("video", 5)
                await r.wait_frames("audio", 5)
                assert len(r.mids()) == 2, r.tracks
                assert all(t["participant_id"] == r.tracks[0]["participant_id"] for t in r.tracks)
                assert r.frame_size[r.mids("video")[0]] == (w, h)
        health = server.router.stats()
        assert health["lessons"] == 3 and health["tracks"] == 6
        # what the receivers decoded went through the compiled fan-out loop (sfu/_fanout.c),
        # over real ICE/DTLS/SRTP; only each segment's first packets take DownTrack.forward
        after = STATS.counters()
        forwarded = after["forwarded_packets"] - before["forwarded_packets"]
        in_c = after["forwarded_in_c"] - before["forwarded_in_c"]
        assert forwarded > 0 and in_c > 0.8 * forwarded, (in_c, forwarded)
    finally:
        for p in peers:
            await p.close()


async def test_h264_is_forwarded_too(server: Server) -> None:
    from aiortc import RTCRtpSender

    lead = ClassroomPeer(server.base_url, tok(server, "h264", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "h264", "r1", "remote"))
    try:
        await lead.connect()
        await remote.connect()
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
        lead.codec_preferences = {"video": h264}
        await lead.publish([(PatternTrack(), "teacher")])
        await remote.wait_frames("video", 10)
        offer = next(m["sdp"] for m in remote.log if m["type"] == "subscribe_offer")
        assert "H264/90000" in offer and "VP8/90000" not in offer
    finally:
        await lead.close()
        await remote.close()
