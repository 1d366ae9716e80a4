from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from recorder.service import load_secret, setup_recording
from tests.unit.recorder.test_catalogue import make_recording


def test_secret_is_created_once_and_private(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert len(first) == 64 and load_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "recording_secret").stat().st_mode) == 0o600
    assert load_secret(tmp_path, "from-the-environment-0123") == b"from-the-environment-0123"


async def test_service_lists_and_serves(tmp_path: Path) -> None:
    make_recording(tmp_path, "L9")
    app = web.Application()
    service = setup_recording(app, tmp_path, "ws://127.0.0.1:1/ws", env_secret="")
    assert [r.lesson_id for r in service.recordings()] == ["L9"]
    url = service.playback_url("L9")
    assert url.startswith("/playback.html?manifest=%2Fapi%2Frecordings%2FL9%2Fmanifest")
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(unquote(url.split("manifest=", 1)[1]))
        assert resp.status == 200
        assert (await resp.json())["lesson_id"] == "L9"
    assert service.launcher.processes == {}
