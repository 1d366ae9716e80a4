"""One subscriber connection's Link over fake layers: REMB and loss in, layer choices out."""

from __future__ import annotations

from sfu.downtrack import DownTrack
from sfu.link import Link, LinkConfig
from tests.unit.sfu.test_simulcast import layers
from tests.unit.sfu.test_uptrack import FakeTransport, rtp, vp8_payload


def setup() -> tuple[Link, DownTrack, tuple]:  # type: ignore[type-arg]
    group = layers()
    for i, t in enumerate(group):
        t.bitrate_bps = (150_000.0, 500_000.0, 1_500_000.0)[i]
        t.on_rtp(rtp(1, 0, vp8_payload(True)), 0)  # each layer is live
    link = Link()
    d = DownTrack("s1", "1", "video", 555, 100, 90000, FakeTransport())  # type: ignore[arg-type]
    d.link = link
    d.attach(group[-1])
    return link, d, group


async def test_remb_alone_lowers_the_layer_but_never_pauses() -> None:
    link, d, group = setup()
    now = 100.0
    link.evaluate([d], now, 0)
    for i in range(20):  # REMB falls and falls (a jittery path), no loss at all
        now += 0.35
        link.on_remb(int(1_000_000 / 2**i) + 1, [d], now)
        link.evaluate([d], now, 0)
    assert link.layers["1"] == 0 and d.target is group[0]  # the lowest layer (at its keyframe), not paused


async def test_heavy_loss_pauses_and_the_video_comes_back() -> None:
    link, d, group = setup()
    now = 100.0
    link.evaluate([d], now, 0)
    for _ in range(30):
        now += 0.35
        link.estimator.on_loss(0.6, now)
        link.evaluate([d], now, 0)
    assert link.layers["1"] == -1 and link.quality() == "poor"
    for _ in range(100):  # the loss stops: the loss-based estimate grows, the video resumes
        now += 0.5
        link.estimator.on_loss(0.0, now)
        link.evaluate([d], now, 0)
    assert link.layers["1"] >= 0


async def test_a_constrained_link_is_paced_and_a_free_one_is_not() -> None:
    link, d, group = setup()
    now = 100.0
    for _ in range(40):  # a clean link: the estimate grows, the top layer fits
        now += 0.35
        link.on_remb(5_000_000, [d], now)
        link.evaluate([d], now, 0)
    assert link.layers["1"] == 2
    assert link.pace_bps == 0  # on the top layer, nothing congested: the fast path
    for _ in range(5):  # a falling REMB under what is sent: congestion, a lower layer
        now += 0.35
        link.on_remb(400_000, [d], now)
        link.sent_bps = 1_600_000
        link.estimator.on_remb(300_000, 1_600_000, now)
        link.evaluate([d], now, 0)
    assert 0 < link.pace_bps < 1_000_000


async def test_the_recorder_gets_the_highest_layer_that_is_sending() -> None:
    from sfu.link import LinkConfig

    group = layers()
    for t in group[:2]:  # a 640x360 camera: the browser sends no top layer
        t.on_rtp(rtp(1, 0, vp8_payload(True)), 0)
    link = Link(LinkConfig(adaptive=False))
    d = DownTrack("rec", "1", "video", 556, 100, 90000, FakeTransport())  # type: ignore[arg-type]
    d.link = link
    d.attach(group[-1], Link.top_live_layer(group[-1], 0))
    assert d.src is group[1]
    d.attach(None)
    d.attach(group[-1])  # started on the silent top layer: the next evaluation moves it down
    link.evaluate([d], 100.0, 0)
    assert d.target is group[1] or d.src is group[1]


async def test_repairs_are_sent_twice_on_a_randomly_lossy_long_link_or_a_very_lossy_one() -> None:
    link, d, group = setup()
    top = group[-1]
    t = d.transport
    now = 100.0
    for i in range(1, 40):  # 3 % of what is sent is NACKed, 100 ms round trip, nothing congested
        top.on_rtp(rtp(1 + i, 3000 * i, vp8_payload(i == 1)), 33 * i)
    link.estimator.rtt_ms = 100.0
    link.nack_ratio = 0.03
    out = [p for p in t.rtp]  # type: ignore[attr-defined]
    seq = int.from_bytes(out[-1][2:4], "big")
    sent = len(out)
    assert link.duplicate_repairs(now)
    d.on_nack([seq], now=now)
    assert len(t.rtp) == sent + 2  # type: ignore[attr-defined]
    link.estimator.congested_at = now - 1  # congestion: the loss is the queue's, one copy
    assert not link.duplicate_repairs(now)
    d.on_nack([seq], now=now + 0.5)
    assert len(t.rtp) == sent + 3  # type: ignore[attr-defined]
    link.estimator.congested_at = -1e9
    link.estimator.rtt_ms = 10.0  # a short round trip, 3 % lost: the browser asks again only
    assert link.duplicate_repairs(now)  # after its own RTT estimate (100 ms without one)
    link.nack_ratio = 0.02  # a little loss on a short path: one copy
    assert not link.duplicate_repairs(now)


async def test_the_nack_ratio_follows_the_nacked_share() -> None:
    link, d, group = setup()
    top = group[-1]
    now = 100.0
    link.evaluate([d], now, 0)
    seq = 2
    for _ in range(40):
        for _ in range(20):
            top.on_rtp(rtp(seq, 3000 * seq, vp8_payload(seq == 2)), 33 * seq)
            seq += 1
        link.on_nack(555, [seq - 1])  # one in twenty
        now += 0.3
        link.evaluate([d], now, 0)
    assert 0.03 < link.nack_ratio < 0.07


def temporal_layers(fps: float, share: float) -> tuple[Link, DownTrack, tuple]:  # type: ignore[type-arg]
    link, d, group = setup()
    for t in group:
        t.temporal_ms = t.last_arrival_ms = 1000  # sends temporal layers
        t.fps = fps
        t.half_rate_share = share
    return link, d, group


def test_half_frame_rate_options_only_for_a_smooth_enough_layer() -> None:
    from sfu.link import layer_options
    from sfu.vp8 import ALL_TIDS

    _, _, group = temporal_layers(30.0, 0.6)
    opts = layer_options(group[-1], 1000)
    assert [(i, t) for i, t, _ in opts] == [(0, 1), (0, ALL_TIDS), (1, 1), (1, ALL_TIDS), (2, 1), (2, ALL_TIDS)]
    assert [round(b) for _, _, b in opts] == [90_000, 150_000, 300_000, 500_000, 900_000, 1_500_000]
    _, _, group = temporal_layers(20.0, 0.6)  # 10 fps at half rate: priced as the full rate, never chosen
    assert [round(b) for _, _, b in layer_options(group[-1], 1000)] == [150_000, 150_000, 500_000, 500_000,
                                                                        1_500_000, 1_500_000]


async def test_a_link_a_little_short_of_the_top_layer_drops_frame_rate_first() -> None:
    from sfu.vp8 import ALL_TIDS

    link, d, group = temporal_layers(30.0, 0.6)
    now = 100.0
    for _ in range(40):
        now += 0.35
        link.on_remb(5_000_000, [d], now)
        link.evaluate([d], now, 1000)
    assert link.layers["1"] == 2 and d.temporal == ALL_TIDS
    remb = 2_000_000.0
    for _ in range(12):  # falling to 1.1 Mbit/s: the top layer at half its frame rate, no keyframe wait
        now += 0.35
        remb = max(1_100_000.0, remb * 0.9)
        link.sent_bps = 1_500_000
        link.estimator.on_remb(int(remb), 1_500_000, now)
        link.evaluate([d], now, 1000)
    assert link.layers["1"] == 2 and d.temporal == 1 and d.fwd.target_tid == 1
    assert d.src is group[-1] and d.target is None


class FakeHistory:
    """What Egress.twcc_sent answers: packet n sent at ``start + n * gap``, 1,200 bytes."""

    def __init__(self, start: float, gap: float) -> None:
        self.start, self.gap = start, gap

    def twcc_sent(self, seq: int) -> tuple[float, int] | None:
        return (self.start + seq * self.gap, 1200)


def _twcc_feedback(first: int, count: int, history: FakeHistory, queue_s: float) -> object:
    from sfu import rtcp

    arrivals = [round((history.start + (first + i) * history.gap + 0.02 + queue_s) * 1e6) for i in range(count)]
    return rtcp.TransportFeedback(1, 2, first, 0, [((first + i) & 0xFFFF, a) for i, a in enumerate(arrivals)])


async def test_nack_bursts_without_a_queue_are_random_loss_not_congestion() -> None:
    link, d, group = setup()
    top = group[-1]
    now = 100.0
    history = FakeHistory(now, 0.005)
    link.evaluate([d], now, 0)
    seq, fb = 2, 0
    for _ in range(16):
        for _ in range(20):
            top.on_rtp(rtp(seq, 3000 * seq, vp8_payload(seq == 2)), 33 * seq)
            seq += 1
        now += 0.3
        link.on_twcc(_twcc_feedback(fb, 60, history, 0.0), history, [d], now)  # type: ignore[arg-type]
        fb += 60
        link.on_nack(555, list(range(seq - 5, seq)))  # a quarter of the window NACKed: a burst
        link.evaluate([d], now, 0)
    assert link.twcc is not None and link.twcc.queue_ms < 1
    assert link.estimator.congested_at < 0  # no queue: the line's own loss
    # the same bursts while the queue grows: congestion
    for step in range(6):
        for _ in range(20):
            top.on_rtp(rtp(seq, 3000 * seq, vp8_payload(False)), 33 * seq)
            seq += 1
        now += 0.3
        link.on_twcc(_twcc_feedback(fb, 60, history, 0.03 * (step + 1)), history, [d], now)  # type: ignore[arg-type]
        fb += 60
        link.on_nack(555, list(range(seq - 5, seq)))
        link.evaluate([d], now, 0)
    assert link.estimator.congested_at > 100.0


def test_receiver_report_loss_is_summed_over_streams_not_the_worst_block() -> None:
    """A 5 % line: the camera stream lost 10 of 200 packets, the courseware stream 1 of its 2.
    The loss is 11 / 202, not the courseware block's "50 %"; and a report that covers too few
    packets is kept until the next one."""
    from sfu.rtcp import ReportBlock

    link = Link()
    cam, screen = 1111, 2222
    state = {cam: [1000, 0], screen: [5000, 0]}

    def report(now: float, **grow: tuple[int, int]) -> None:
        blocks = []
        for name, (expected, lost) in grow.items():
            ssrc = cam if name == "cam" else screen
            state[ssrc][0] += expected
            state[ssrc][1] += lost
            fraction = int(256 * lost / expected) if expected else 0
            blocks.append(ReportBlock(ssrc, min(255, fraction), state[ssrc][1], state[ssrc][0], 0, 0, 0))
        link.on_report(blocks, {cam, screen}, now)

    report(1.0, cam=(0, 0), screen=(0, 0))  # the first report: counters only
    report(2.0, cam=(200, 10), screen=(2, 1))
    assert abs(link.estimator.loss - 11 / 202) < 1e-9
    report(3.0, cam=(5, 0), screen=(2, 2))  # 7 packets: too few to say anything yet
    assert abs(link.estimator.loss - 11 / 202) < 1e-9
    report(4.0, cam=(20, 1), screen=(0, 0))  # 27 packets, 3 lost, over the two reports
    assert abs(link.estimator.loss - 3 / 27) < 1e-9
    report(5.0, cam=(30, 6))
    link.on_report([], {cam, screen}, 5.5)  # (an audio receiver's report: no video block)
    assert abs(link.estimator.loss - 0.2) < 1e-9
    report(6.0, cam=(0, 0), screen=(0, 0))  # video paused: nothing expected, nothing lost
    assert link.estimator.loss == 0.0


async def test_loss_reports_do_not_pause_video_the_line_is_seen_to_carry() -> None:
    """Transport-cc says the lowest layer arrives; loss reports (random loss, or a report that
    overstates it) push the loss-based figure down: lower layers, but no pause."""
    from sfu.bwe.twcc import TwccEstimator

    link, d, group = setup()
    link.twcc = TwccEstimator()
    now = 100.0
    link.evaluate([d], now, 0)
    for _ in range(30):
        now += 0.35
        link.twcc.fed_at, link.twcc.acked_bps = now, 400_000.0  # q (150 kbit/s) arrives, and more
        link.estimator.on_loss(0.6, now)
        link.evaluate([d], now, 0)
    assert link.layers["1"] == 0
    link.twcc.fed_at = now - 5  # no feedback any more (nothing numbered is arriving): as before
    for _ in range(10):
        now += 0.35
        link.estimator.on_loss(0.6, now)
        link.evaluate([d], now, 0)
    assert link.layers["1"] == -1


async def test_a_late_subscriber_of_a_measured_single_layer_camera_is_not_paused() -> None:
    """A 1.6 Mbit/s single-layer camera (a WHIP encoder, a browser sending L1T1), measured
    before a classroom subscribes; the new subscriber's estimate starts at 1.5 Mbit/s and it
    sends no feedback at all (a bot, or RTCP not there yet): it gets the video at once (the
    fan-out benchmark lost 3-7 % of its packets to late subscribers paused for ~4 s)."""
    from sfu.uptrack import UpTrack
    from tests.unit.sfu.test_uptrack import OPUS, VP8

    cam = UpTrack("p1:1", "video", "teacher", VP8, 1111, "p1", "c1", send_rtcp=lambda b: True, rtcp_ssrc=9)
    cam.on_rtp(rtp(1, 0, vp8_payload(True)), 0)
    cam.bitrate_bps = 1_600_000.0
    mic = UpTrack("p1:0", "audio", "teacher", OPUS, 2222, "p1", "c1", send_rtcp=lambda b: True, rtcp_ssrc=9)
    link = Link()
    transport = FakeTransport()
    v = DownTrack("s1", "1", "video", 555, 100, 90000, transport)  # type: ignore[arg-type]
    a = DownTrack("s1", "0", "audio", 556, 111, 48000, transport)  # type: ignore[arg-type]
    for d, up in ((v, cam), (a, mic)):
        d.link = link
        d.attach(up)
    link.evaluate([v, a], 100.0, 0)
    assert link.layers["1"] == 0 and not v.fwd.paused


class LossyHistory:
    """A connection's numbering of what it sent: transport-wide seq -> (sent at, ssrc, RTP seq)."""

    def __init__(self) -> None:
        self.packets: dict[int, tuple[float, int, int]] = {}

    def twcc_sent(self, seq: int) -> tuple[float, int] | None:
        p = self.packets.get(seq)
        return None if p is None else (p[0], 1200)

    def twcc_packet(self, seq: int) -> tuple[int, int] | None:
        p = self.packets.get(seq)
        return None if p is None else (p[1], p[2])


def test_feedback_says_what_was_lost_but_not_a_copy_whose_twin_arrived_nor_on_a_full_line() -> None:
    from sfu import rtcp

    link = Link(LinkConfig(feedback_repairs=True))
    h = LossyHistory()
    for i in range(6):  # RTP 10..15 of stream 555, sent 5 ms apart; 13 sent twice (a repair)
        h.packets[i] = (100.0 + 0.005 * i, 555, 10 + i)
    h.packets[6] = (100.03, 555, 13)
    arrived: list[int | None] = [1_000_000, None, 1_010_000, None, 1_020_000, 1_025_000, 1_030_000]
    fb = rtcp.TransportFeedback(1, 2, 0, 0, [(i, a) for i, a in enumerate(arrived)])
    assert link.on_twcc(fb, h, [], 100.1) == [(555, 11, 100.005)]  # 13's other copy arrived
    link.estimator.congested_at = 100.15  # the line's queue overflowed: NACKs alone, budgeted
    assert link.on_twcc(fb, h, [], 100.2) == []
    link.config.feedback_repairs = False
    link.estimator.congested_at = -1e9
    assert link.on_twcc(fb, h, [], 105.0) == []


async def test_a_lost_packet_is_repaired_once_whether_the_nack_or_the_feedback_comes_first() -> None:
    from sfu.stats import STATS

    link, d, group = setup()
    top = group[-1]
    t = d.transport
    for i in range(1, 40):
        top.on_rtp(rtp(1 + i, 3000 * i, vp8_payload(i == 1)), 33 * i)
    out = list(t.rtp)  # type: ignore[attr-defined]
    seqs = [int.from_bytes(p[2:4], "big") for p in out]
    a, b = seqs[-3], seqs[-2]
    sent = len(t.rtp)  # type: ignore[attr-defined]
    now = 100.0
    before = STATS.feedback_repairs
    d.on_lost([(a, now - 0.05)], now)  # the feedback first: repaired at once
    assert len(t.rtp) == sent + 1  # type: ignore[attr-defined]
    assert STATS.feedback_repairs == before + 1
    d.on_nack([a], now=now + 0.03)  # its NACK crossed that repair: not sent twice
    assert len(t.rtp) == sent + 1  # type: ignore[attr-defined]
    d.on_nack([b], now=now + 0.01)  # the NACK first ...
    assert len(t.rtp) == sent + 2  # type: ignore[attr-defined]
    d.on_lost([(b, now - 0.04)], now + 0.05)  # ... then the feedback on the first copy: done already
    assert len(t.rtp) == sent + 2  # type: ignore[attr-defined]
    d.on_nack([b], now=now + 0.11)  # the browser asks again 100 ms after its NACK: answered
    assert len(t.rtp) == sent + 3  # type: ignore[attr-defined]
    d.on_lost([(b, now + 0.111)], now + 0.16)  # that repair was lost too: again, without a NACK
    assert len(t.rtp) == sent + 4  # type: ignore[attr-defined]
    d.on_nack([b], now=now + 0.2)  # (its NACK, crossing that repair: not answered twice)
    assert len(t.rtp) == sent + 4  # type: ignore[attr-defined]


def test_repairs_sent_twice_get_twice_the_budget() -> None:
    link, d, group = setup()
    now = 100.0
    link.sent_bps = 2_000_000.0
    link.nack_ratio = 0.05  # 5 % NACKed, nothing congested: each repair goes twice
    assert link.duplicate_repairs(now)
    doubled = link.retransmit_base(now)
    link.estimator.congested_at = now - 1  # a full line: one copy, the plain budget
    assert not link.duplicate_repairs(now)
    assert doubled == 2 * link.retransmit_base(now) >= 4_000_000.0


async def test_the_keyframe_a_picture_starts_from_is_repaired_past_the_budget() -> None:
    """On a full line the budget refuses repairs; a lost packet of the keyframe the subscriber's
    picture starts from is sent anyway (else the picture stays frozen until the browser's PLI)."""
    from sfu.stats import STATS

    link, d, group = setup()
    top = group[-1]
    t = d.transport
    top.on_rtp(rtp(2, 3000, vp8_payload(True)), 33)  # a keyframe in two packets
    top.on_rtp(rtp(3, 3000, vp8_payload(True, start=False)), 33)
    for i in range(2, 10):
        top.on_rtp(rtp(2 + i, 3000 * i, vp8_payload(False)), 33 * i)
    seqs = [int.from_bytes(p[2:4], "big") for p in t.rtp]  # type: ignore[attr-defined]
    key_part, delta = seqs[1], seqs[-2]  # the keyframe's second packet, a delta frame's
    link.budget._tokens, link.budget._at = 0.0, 100.0  # nothing left (a full line)
    sent, repairs = len(t.rtp), STATS.keyframe_repairs  # type: ignore[attr-defined]
    d.on_nack([delta, key_part], now=100.0)
    assert len(t.rtp) == sent + 1  # type: ignore[attr-defined]
    assert t.rtp[-1][2:4] == key_part.to_bytes(2, "big")  # type: ignore[attr-defined]
    assert STATS.keyframe_repairs == repairs + 1
    link.budget._tokens = -1e9  # deep in debt (its repairs lost again and again in a full queue): no more
    d.on_nack([key_part], now=100.5)
    assert len(t.rtp) == sent + 1  # type: ignore[attr-defined]


async def test_a_nack_that_crossed_its_repair_is_not_answered_again() -> None:
    """A browser that knows its round trip (rtcp-fb rrtr) asks again after about one: on a short
    path a few ms, before the repair can arrive. Within 5 ms (or 0.75 of the link's round trip,
    if more) of the repair a NACK is not answered again; after that it is (the repair was lost)."""
    from sfu.stats import STATS

    link, d, group = setup()
    top = group[-1]
    t = d.transport
    for i in range(1, 20):
        top.on_rtp(rtp(1 + i, 3000 * i, vp8_payload(i == 1)), 33 * i)
    seq = int.from_bytes(t.rtp[-2][2:4], "big")  # type: ignore[attr-defined]
    sent, crossed = len(t.rtp), STATS.nacks_crossed  # type: ignore[attr-defined]
    now = 100.0
    link.estimator.rtt_ms = 2.0
    d.on_nack([seq], now=now)
    assert len(t.rtp) == sent + 1  # type: ignore[attr-defined]
    d.on_nack([seq], now=now + 0.002)  # crossed it
    assert len(t.rtp) == sent + 1  # type: ignore[attr-defined]
    assert STATS.nacks_crossed == crossed + 1
    d.on_nack([seq], now=now + 0.008)  # the repair was lost: answered
    assert len(t.rtp) == sent + 2  # type: ignore[attr-defined]
    link.estimator.rtt_ms = 100.0  # a long path: 75 ms
    d.on_nack([seq], now=now + 0.06)
    assert len(t.rtp) == sent + 2  # type: ignore[attr-defined]
    d.on_nack([seq], now=now + 0.09)
    assert len(t.rtp) == sent + 3  # type: ignore[attr-defined]


async def test_video_is_paced_at_the_line_rate_while_a_queue_stands() -> None:
    """A standing queue shows the line's rate (TwccEstimator.drain_bps): while it stands, and a
    little after, the connection's video is paced just under it; then not any more."""
    from sfu.bwe.twcc import TwccEstimator
    from sfu.link import QUEUE_PACE_S

    link, d, group = setup()
    link.twcc = TwccEstimator()
    now = 100.0
    link.evaluate([d], now, 0)
    assert link.line_pace_bps == 0.0  # no queue
    link.twcc.overused_at = now
    link.twcc.drain_bps = lambda: 470_000.0  # type: ignore[method-assign]
    link.evaluate([d], now + 0.1, 0)
    assert 440_000 < link.line_pace_bps < 470_000
    link.twcc.drain_bps = lambda: None  # type: ignore[method-assign]  # the queue drained
    link.evaluate([d], now + 1.0, 0)
    assert 440_000 < link.line_pace_bps < 470_000  # the line's rate is remembered a while
    link.evaluate([d], now + QUEUE_PACE_S + 0.1, 0)
    assert link.line_pace_bps == 0.0
