"""Counting unauthenticated connections (signaling/connguard.py)."""

from __future__ import annotations

from signaling.connguard import ConnectionGuard
from signaling.limits import Limits


def test_global_and_per_address_caps_and_idempotent_release() -> None:
    guard = ConnectionGuard(Limits(max_unauthenticated=3, max_unauthenticated_per_address=2))
    a1, a2 = guard.slot("a"), guard.slot("a")
    refused = guard.slot("a")
    assert not callable(refused) and refused.status == 429 and "a has 2" in refused.message
    b1 = guard.slot("b")
    refused = guard.slot("c")
    assert not callable(refused) and refused.status == 503
    assert callable(a1) and callable(a2) and callable(b1)
    a1()
    a1()  # a second release of the same slot changes nothing
    assert guard.total == 2 and guard.by_address == {"a": 1, "b": 1}
    a2()
    b1()
    assert guard.total == 0 and guard.by_address == {}
    assert guard.refused == 2


def test_zero_turns_a_cap_off() -> None:
    guard = ConnectionGuard(Limits(max_unauthenticated=0, max_unauthenticated_per_address=0))
    slots = [guard.slot("a") for _ in range(500)]
    assert all(callable(s) for s in slots)
