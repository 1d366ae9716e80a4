"""Locust, headless, with a handful of classroom users against a real ``classroom serve``
subprocess: every join, ping and leave must succeed."""

from __future__ import annotations

import pytest

from loadtest.signaling_load import run_load


@pytest.mark.timeout(60)
def test_locust_smoke() -> None:
    result = run_load(
        users=10, spawn_seconds=2.0, hold_seconds=3.0, run_seconds=6.0, bureau_users=1,
        ping_seconds=1.0, pin=False, quiet=True,
    )
    assert result["failures"] == 0, result["failure_detail"]
    assert result["locust_exit_code"] == 0
    assert result["joins"] >= 10
    assert result["counts"]["left"] >= 10
    assert result["join_ms"]["p99"] < 1000
    assert result["server_alive_after"]
