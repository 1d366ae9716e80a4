"""The first administrator's API key is written to ``admin-key.txt`` (0600) in the data dir as well
as printed (under compose the banner is only in the logs), and it logs in."""

from __future__ import annotations

import stat
from pathlib import Path

import aiohttp

from classroom.server import ADMIN_KEY_FILE, start_server
from tests.integration.conftest import server_config


async def test_admin_key_written_to_a_private_file(tmp_path: Path) -> None:
    srv = await start_server(server_config(tmp_path))
    try:
        banner = "\n".join(srv.extras["banner"])
        path = srv.config.data_path / ADMIN_KEY_FILE
        assert str(path) in banner
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        key = path.read_text(encoding="utf-8").splitlines()[0]
        assert key.startswith("cka_") and key in banner
        async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{srv.port}/api/me", headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            assert resp.status == 200, await resp.text()
    finally:
        await srv.stop()
    again = await start_server(server_config(tmp_path))  # a later start creates no new key
    try:
        assert not any("API key" in line for line in again.extras.get("banner", []))
        assert path.read_text(encoding="utf-8").splitlines()[0] == key
    finally:
        await again.stop()
