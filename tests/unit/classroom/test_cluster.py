"""``classroom cluster``'s supervision rule (pure: no processes are started here): a node that
exits is started again after a delay that doubles while it keeps failing soon after its start,
and goes back to 1 s once it stayed up."""

from __future__ import annotations

import subprocess
import sys

from classroom.cluster import RESTART_MAX_S, RESTART_MIN_S, STABLE_S, Supervised


def _exited(code: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
    proc.wait()
    return proc


def test_restart_delay_doubles_while_a_node_keeps_failing() -> None:
    child = Supervised("node-1", [sys.executable, "-c", "pass"], {})
    delays = []
    for restarts in range(8):
        child.proc, child.started_at, child.restart_at, child.restarts = _exited(3), 100.0, None, restarts
        line = child.check(101.0)
        assert line is not None and "exited with status 3" in line
        delays.append(child.delay_s)
    assert delays[0] == RESTART_MIN_S
    assert delays[1:4] == [2.0, 4.0, 8.0]
    assert max(delays) == RESTART_MAX_S


def test_a_node_that_stayed_up_restarts_after_the_minimum() -> None:
    child = Supervised("node-2", [sys.executable, "-c", "pass"], {})
    child.delay_s = 16.0
    child.proc, child.started_at, child.restarts = _exited(1), 0.0, 3
    line = child.check(STABLE_S + 5.0)
    assert line is not None and child.delay_s == RESTART_MIN_S
    assert child.restart_at == STABLE_S + 5.0 + RESTART_MIN_S
    # not due yet: nothing happens
    assert child.check(STABLE_S + 5.5) is None
