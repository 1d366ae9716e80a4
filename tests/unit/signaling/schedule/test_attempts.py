"""Attempt limits for API-key checks, with a fake clock."""

from __future__ import annotations

from signaling.schedule.attempts import AttemptLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock) -> AttemptLimiter:
    return AttemptLimiter(failures_per_id=3, failures_per_address=5, window_s=60.0,
                          pending_per_id=1, pending_per_address=2, clock=clock)  # fmt: skip


def test_failures_lock_an_id_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    lim = limiter(clock)
    for i in range(3):
        assert lim.check("adm_a", f"10.0.0.{i}") is None
        lim.begin("adm_a", f"10.0.0.{i}")
        lim.end("adm_a", f"10.0.0.{i}", ok=False)
        clock.now += 10
    refusal = lim.check("adm_a", "10.0.0.9")
    assert refusal is not None and "adm_a" in refusal.message
    assert refusal.retry_after_s == 30  # first failure at t=1000 leaves the window at 1060; now 1030
    clock.now += 30
    assert lim.check("adm_a", "10.0.0.9") is None
    assert lim.check("adm_b", "10.0.0.9") is None  # other ids are not affected


def test_an_address_is_limited_across_ids_and_success_clears_the_id() -> None:
    clock = Clock()
    lim = limiter(clock)
    for i in range(5):
        lim.begin(f"adm_{i}", "10.1.1.1")
        lim.end(f"adm_{i}", "10.1.1.1", ok=False)
    refusal = lim.check("adm_new", "10.1.1.1")
    assert refusal is not None and "10.1.1.1" in refusal.message
    lim2 = limiter(clock)
    lim2.begin("adm_x", "a")
    lim2.end("adm_x", "a", ok=False)
    lim2.begin("adm_x", "a")
    lim2.end("adm_x", "a", ok=True)
    assert "adm_x" not in lim2.by_id.tracks


def test_checks_in_progress_are_capped_and_entries_do_not_pile_up() -> None:
    clock = Clock()
    lim = limiter(clock)
    lim.begin("adm_a", "h")
    refusal = lim.check("adm_a", "other")
    assert refusal is not None and refusal.retry_after_s == 1
    lim.begin("adm_b", "h")
    assert lim.check("adm_c", "h") is not None  # two in progress from h
    lim.end("adm_a", "h", ok=True)
    lim.end("adm_b", "h", ok=True)
    assert lim.check("adm_c", "h") is None
    assert not lim.by_address.tracks and not lim.by_id.tracks
    assert lim.refused == 2
