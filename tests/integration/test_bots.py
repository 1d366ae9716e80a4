"""The load-test media bots against a real in-process server: 1 publisher bot, 3 subscriber
bots; every sampled payload the subscribers unprotect must be one the publisher sent."""

from __future__ import annotations

import asyncio

from classroom.server import Server
from loadtest.bots import PublisherBot, SendLog, SubscriberBot
from loadtest.media import StreamSpec, load_stream

SMALL = StreamSpec(width=320, height=240, video_bitrate=300_000, seconds=2.0)


async def test_publisher_and_subscriber_bots(server: Server) -> None:
    stream = await asyncio.to_thread(load_stream, SMALL)
    assert stream.keyframes[0] and len(stream.video) >= 60 and len(stream.audio) >= 100
    log = SendLog()
    lead = server.signer.issue("bots", "lead-1", "lead")
    pub = PublisherBot(server.base_url, lead, stream, send_log=log)
    subs = [
        SubscriberBot(
            server.base_url,
            server.signer.issue("bots", f"remote-{i}", "remote"),
            sample_every=2,
            send_log=log,
        )
        for i in range(3)
    ]
    try:
        await pub.start()
        await asyncio.gather(*(s.start() for s in subs))
        await asyncio.gather(*(s.wait_receiving(packets=20, timeout=15) for s in subs))
        await asyncio.sleep(1.0)
        for s in subs:
            st = s.stats
            assert st.received["video"] > 30 and st.received["audio"] > 30, st
            assert st.verified >= 20, st
            assert st.mismatched == 0 and st.srtp_errors == 0, st
            assert all(0 <= ms < 1000 for ms in st.latencies_ms)
            assert {t["kind"] for t in s.tracks if t["track_id"]} == {"video", "audio"}
        assert pub.stats.sent["video"] > 0 and pub.stats.sent["audio"] > 0
        assert pub.stats.keyframes_sent >= 1
        assert not pub.signaling.errors
    finally:
        await asyncio.gather(*(s.stop() for s in subs), return_exceptions=True)
        await pub.stop()


async def test_a_simulcast_publisher_is_demultiplexed_by_rid(server: Server) -> None:
    """A publisher offering a=simulcast (RIDs q, h, f) gets a=simulcast:recv back; its three
    SSRCs are adopted as the layers of one track, and subscribers receive the top layer."""
    stream = await asyncio.to_thread(load_stream, SMALL)
    log = SendLog()
    pub = PublisherBot(server.base_url, server.signer.issue("sim", "lead-1", "lead"), stream,
                       send_log=log, simulcast=True)
    sub = SubscriberBot(server.base_url, server.signer.issue("sim", "remote-1", "remote"),
                        sample_every=2, send_log=log)
    try:
        await pub.start()
        await sub.start()
        await sub.wait_receiving(packets=40, timeout=15)
        await asyncio.sleep(1.0)
        room = server.router.media.rooms["sim"]
        video = [t for t in room.tracks.values() if t.is_video]
        assert len(video) == 1
        layers = video[0].layers
        assert [t.rid for t in layers] == ["q", "h", "f"] and video[0] is layers[-1]
        assert all(t.ssrc and t.packets > 0 for t in layers), [(t.rid, t.ssrc, t.packets) for t in layers]
        assert layers[0].packets < layers[1].packets < layers[2].packets
        assert sub.stats.verified >= 20 and sub.stats.mismatched == 0, sub.stats
        downs = [d for d in server.router.media.rooms["sim"].subscribers.values() for d in d.downtracks()
                 if d.kind == "video"]
        assert downs and all(d.src is not None for d in downs)
    finally:
        await sub.stop()
        await pub.stop()
