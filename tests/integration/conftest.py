from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from classroom.config import Config
from classroom.server import Server, start_server


def server_config(tmp_path: Path, *, recording: bool = False, demo: bool = False,
                  end_grace_s: float = 0.5) -> Config:
    """An in-process server's config for tests: a free port, a data dir in ``tmp_path``; with
    ``recording``, every lesson recorded (ending ``end_grace_s`` after the last classroom left)
    and analysed on a 3 s interval."""
    config = Config()
    config.server.port = 0
    config.media.udp_port = 0  # the node's one media port, on a port the kernel picks (tests may run side by side)
    config.server.data_dir = str(tmp_path / "data")
    config.server.demo_lesson = demo
    # Recording is on by default for scheduled lessons and the demo lesson; tests that do not
    # ask for it turn it off (no recorder processes), those that do record every room.
    config.recording.enabled = recording
    if recording:
        config.recording.every_lesson = True
        config.recording.end_grace_s = end_grace_s
        config.analytics.interval_s = 3.0
    return config


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_server(server_config(tmp_path))
    try:
        yield srv
    finally:
        await srv.stop()
