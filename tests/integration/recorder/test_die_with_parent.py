"""``recorder.launcher.die_with_parent``, run by the recorder process itself (not a
``preexec_fn``, which blocked the server's event loop until the child exec'd): the recorder gets
SIGTERM when the process that started it dies, and at once when that process is already gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CHILD = "from recorder.launcher import die_with_parent; die_with_parent(); import time; time.sleep(30)"


def test_sigterm_at_once_when_the_server_is_already_gone() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLASSROOM_RECORDER_PARENT_PID": "1"}  # not our parent
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, timeout=30)
    assert child.returncode == -signal.SIGTERM


def test_sigterm_when_the_server_dies() -> None:
    # a middle process plays the server: it starts the "recorder" with its own pid, then is killed
    middle = ("import os, subprocess, sys, time; "
              "env = dict(os.environ, CLASSROOM_RECORDER_PARENT_PID=str(os.getpid())); "
              f"p = subprocess.Popen([sys.executable, '-c', {CHILD!r}], env=env); "
              "print(p.pid, flush=True); time.sleep(30)")
    server = subprocess.Popen([sys.executable, "-c", middle], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    recorder = int(server.stdout.readline())
    time.sleep(1.5)  # the recorder has made its prctl
    os.kill(recorder, 0)
    server.kill()
    server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(recorder, 0)
        except ProcessLookupError:
            return
        try:  # reap it if it became our child (subreaper) — else init does
            os.waitpid(recorder, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    raise AssertionError("the recorder outlived the server that started it")
