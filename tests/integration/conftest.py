from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from classroom.config import Config
from classroom.server import Server, start_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = Config()
    config.server.port = 0
    config.server.data_dir = str(tmp_path / "data")
    config.server.demo_lesson = False
    srv = await start_server(config)
    try:
        yield srv
    finally:
        await srv.stop()
