"""The prober with a fake clock."""

from __future__ import annotations

from sfu.bwe.probe import ProbeConfig, Prober


def test_a_probe_starts_when_a_better_allocation_is_not_confirmed() -> None:
    p = Prober(ProbeConfig(duration_s=1.5, max_ratio=1.0))
    assert p.update(2_000_000, 900_000, 600_000, -1e9, 0.0) == 600_000  # at most 1 x sent
    p2 = Prober(ProbeConfig(max_ratio=5.0))
    assert round(p2.update(2_800_000, 900_000, 600_000, -1e9, 0.0)) == 2_000_000 - 600_000  # target/1.4 arrives
    assert p.active and p.probes == 1
    # REMB climbs to the target: done, no cooldown
    assert p.update(2_000_000, 2_100_000, 1_200_000, -1e9, 1.0) == 0.0
    assert not p.active
    assert p.update(2_000_000, 2_100_000, 2_000_000, -1e9, 1.1) == 0.0  # confirmed: nothing to probe


def test_congestion_fails_the_probe_and_backs_off() -> None:
    p = Prober(ProbeConfig(duration_s=1.5, cooldown_s=4.0, max_cooldown_s=60.0))
    p.update(2_000_000, 900_000, 800_000, -1e9, 10.0)
    assert p.update(2_000_000, 700_000, 800_000, 10.5, 10.6) == 0.0  # REMB fell during the probe
    assert p.failed == 1
    assert p.update(2_000_000, 700_000, 800_000, 10.5, 12.0) == 0.0  # cooling down
    assert p.update(2_000_000, 700_000, 800_000, 10.5, 14.7) > 0  # again after 4 s
    p.update(2_000_000, 700_000, 800_000, 15.0, 15.1)
    assert p.failed == 2
    assert p.update(2_000_000, 700_000, 800_000, 15.0, 20.0) == 0.0  # 8 s now
    assert p.update(2_000_000, 700_000, 800_000, 15.0, 23.2) > 0


def test_a_probe_succeeds_when_remb_comes_most_of_the_way_and_goes_on_while_it_climbs() -> None:
    p = Prober(ProbeConfig(duration_s=1.0, cooldown_s=4.0))
    p.update(3_000_000, 1_000_000, 1_000_000, -1e9, 0.0)
    assert p.update(3_000_000, 1_020_000, 1_000_000, -1e9, 0.5) == p.padding_bps > 0
    assert p.update(3_000_000, 1_030_000, 1_000_000, -1e9, 1.0) == 0.0  # no progress: ends
    assert p.update(3_000_000, 1_030_000, 1_000_000, -1e9, 2.0) == 0.0  # cooling down
    assert p.update(3_000_000, 1_030_000, 1_000_000, -1e9, 5.1) > 0
    assert p.update(3_000_000, 1_500_000, 1_000_000, -1e9, 6.2) > 0  # climbing: goes on
    assert p.update(3_000_000, 2_600_000, 1_000_000, -1e9, 7.3) == 0.0  # 87 % of the target
    assert p.succeeded_bps == 3_000_000 and p.failed == 0 and p.probes == 2


def test_no_probe_starts_right_after_congestion() -> None:
    """The link just moved down because its queue grew: padding toward the layer it left would
    go into that full queue. A probe waits ``quiet_s`` after the last congestion."""
    p = Prober()
    assert p.update(2_000_000, 900_000, 600_000, congested_at=10.0, now=10.0) == 0.0
    assert p.update(2_000_000, 900_000, 600_000, congested_at=10.0, now=11.0) == 0.0
    assert p.update(2_000_000, 900_000, 600_000, congested_at=10.0, now=11.6) > 0
