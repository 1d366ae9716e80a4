"""The estimator on synthetic feedback streams with a fake clock."""

from __future__ import annotations

from sfu.bwe.estimator import EstimatorConfig, LinkEstimator


def run(est: LinkEstimator, seconds: float, now: float, loss: float = 0.0, step: float = 0.2) -> float:
    t = now
    while t < now + seconds:
        est.on_loss(loss, t)
        est.tick(t)
        t += step
    return t


def test_grows_without_loss_up_to_the_maximum() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=500_000, max_bps=3_000_000))
    t = run(est, 5.0, 0.0)
    assert 500_000 * 1.15**4 < est.estimate(t) < 500_000 * 1.15**5.5
    t = run(est, 60.0, t)
    assert est.estimate(t) == 3_000_000


def test_heavy_loss_shrinks_and_moderate_loss_holds() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=2_000_000))
    est.on_loss(0.30, 1.0)
    assert est.estimate(1.0) == 2_000_000 * 0.85
    est.on_loss(0.30, 1.1)  # within the decrease interval: once
    assert est.estimate(1.1) == 2_000_000 * 0.85
    before = est.estimate(1.1)
    t = run(est, 5.0, 2.0, loss=0.05)  # between low and high: hold
    assert est.estimate(t) == before


def test_a_falling_remb_below_the_sent_rate_is_followed_at_once() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=3_000_000))
    est.on_remb(2_800_000, sent_bps=2_000_000, now=0.0)  # above what we send: no congestion
    assert est.estimate(0.0) == 2_800_000  # bounded by the receiver's estimate
    assert est.unbounded() == 3_000_000
    est.on_remb(1_200_000, sent_bps=2_000_000, now=0.5)  # falling, below what we send
    assert est.estimate(0.5) == 1_400_000  # at most halved per decrease interval
    est.on_remb(1_100_000, sent_bps=2_000_000, now=0.6)
    assert est.estimate(0.6) == 1_400_000
    est.on_remb(1_000_000, sent_bps=2_000_000, now=0.9)
    assert est.estimate(0.9) == 1_000_000
    # no growth within a second of congestion
    est.tick(1.0)
    est.tick(1.6)
    assert est.unbounded() == 1_000_000
    est.on_remb(1_500_000, sent_bps=1_000_000, now=2.0)  # a REMB going up is followed at once
    assert est.estimate(2.0) == 1_000_000  # (the loss-based figure is lower now)


def test_a_lagging_but_rising_remb_after_an_upgrade_is_not_congestion() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=3_000_000))
    est.on_remb(700_000, sent_bps=500_000, now=0.0)
    est.on_remb(800_000, sent_bps=2_000_000, now=1.0)  # we just moved up; REMB climbs
    assert est.unbounded() == 3_000_000 and est.estimate(1.0) == 800_000


def test_stale_remb_is_forgotten_and_rtt_is_smoothed() -> None:
    est = LinkEstimator()
    est.on_remb(1_000_000, 500_000, 0.0)
    assert est.remb_fresh(2.0) and not est.remb_fresh(10.0)
    est.on_rtt(100)
    est.on_rtt(200)
    assert 100 < est.rtt_ms < 200
    est.on_rtt(-5)
    est.on_rtt(1e9)
    assert 100 < est.rtt_ms < 200


def test_a_confirmed_probe_lifts_the_remb_bound_until_remb_falls() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=3_000_000))
    est.on_remb(600_000, sent_bps=450_000, now=0.0)
    assert est.estimate(0.0) == 600_000
    est.probe_confirmed(2_000_000, 1.0)
    est.on_remb(620_000, sent_bps=1_900_000, now=1.5)  # lagging, not falling: the bound stays
    assert est.estimate(1.5) == 2_000_000
    est.on_remb(400_000, sent_bps=1_900_000, now=2.0)  # falling: congestion after all
    assert est.estimate(2.0) == 1_000_000


def test_moderate_random_loss_with_room_in_the_remb_grows_but_not_right_after_congestion() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=1_000_000, max_bps=5_000_000))

    def feed(t: float, until: float, remb: float) -> float:
        while t < until:
            est.on_remb(remb, sent_bps=900_000, now=t)
            est.on_loss(0.03, t)
            est.tick(t)
            t += 0.2
        return t

    t = feed(0.0, 3.0, 3_000_000)  # 3 % loss, the REMB well above: the line's own loss
    assert est.unbounded() > 1_300_000
    est.on_remb(600_000, sent_bps=1_000_000, now=t)  # a falling REMB under what we send
    held = est.unbounded()
    t = feed(t + 0.2, t + 4.0, 3_000_000)  # within random_loss_quiet_s of that: hold
    assert est.unbounded() <= held
    t = feed(t, t + 4.0, 3_000_000)
    assert est.unbounded() > held
    assert est.estimate(t) <= 3_000_000  # still bounded by the REMB


def test_moderate_loss_without_a_remb_still_holds() -> None:
    est = LinkEstimator(EstimatorConfig(initial_bps=1_000_000))
    t = run(est, 20.0, 0.0, loss=0.03)
    assert est.estimate(t) == 1_000_000


def test_the_ceiling_grows_faster_while_the_send_side_delay_estimate_guards_the_link() -> None:
    """After a lifted cap, the loss-based figure is the ceiling probes aim at: with transport-cc
    feedback (our own delay estimate, every upgrade confirmed on what arrives) it regrows at
    ``growth_delay_based`` a second; without it, at ``growth``."""
    plain = LinkEstimator(EstimatorConfig(initial_bps=800_000))
    guarded = LinkEstimator(EstimatorConfig(initial_bps=800_000))
    t = 0.0
    while t < 4.0:
        for est in (plain, guarded):
            est.on_loss(0.0, t)
        guarded.on_delay_estimate(900_000, overuse=False, now=t)
        plain.tick(t)
        guarded.tick(t)
        t += 0.2
    assert plain.unbounded() < 800_000 * 1.15**4.1
    assert guarded.unbounded() > 800_000 * 1.4**3.5  # the top layer's 2 Mbit/s within 3 s
