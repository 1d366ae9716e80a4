"""Two real servers (two nodes) on one schedule database (PostgreSQL, and SQLite: one file, as
nodes on one machine share it) and one token secret (a 0600 file named by
CLASSROOM_TOKEN_SECRET_FILE): an administrator key made on one works on the other, a lesson
booked on one is the other's too, and a join link issued by one node admits a classroom on the
other (any node verifies any token)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from classroom.config import Config
from classroom.server import ADMIN_KEY_FILE, Server, start_server
from tests.integration.hostile import PingingClassroom
from tests.postgres_server import PostgresServer

from .conftest import StoreTarget

ROOT = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def node(data_dir: Path, url: str, password_file: Path | None) -> AsyncIterator[Server]:
    config = Config()
    config.server.port = 0
    config.media.udp_port = 0  # the node's one media port, on a port the kernel picks (tests may run side by side)
    config.server.data_dir = str(data_dir)
    config.server.demo_lesson = False
    config.recording.enabled = False
    config.database.url = url
    if password_file is not None:
        config.database.password = password_file.read_text(encoding="utf-8").strip()
    srv = await start_server(config)
    try:
        yield srv
    finally:
        await srv.stop()


def _private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


async def _call(http: aiohttp.ClientSession, srv: Server, method: str, path: str, key: str,
                body: Any = None) -> tuple[int, Any]:
    async with http.request(method, srv.base_url + path, json=body,
                            headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_two_nodes_one_schedule_one_secret(store_target: StoreTarget, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(store_target.target) if store_target.password else f"sqlite:///{store_target.target}"
    password_file = _private(tmp_path / "db_password", store_target.password) if store_target.password else None
    monkeypatch.delenv("CLASSROOM_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("CLASSROOM_TOKEN_SECRET_FILE", str(_private(tmp_path / "token_secret", secrets.token_hex(32))))
    async with node(tmp_path / "a", url, password_file) as a, node(tmp_path / "b", url, password_file) as b:
        assert a.extras["schedule"].database.dialect == b.extras["schedule"].database.dialect == store_target.backend
        # the first node to start made the bootstrap administrator; the second found one
        key = (tmp_path / "a" / ADMIN_KEY_FILE).read_text(encoding="utf-8").split()[0]
        assert not (tmp_path / "b" / ADMIN_KEY_FILE).exists()
        async with aiohttp.ClientSession() as http:
            assert (await _call(http, b, "GET", "/api/me", key))[0] == 200
            status, school = await _call(http, a, "POST", "/api/schools", key, {"name": "No. 1"})
            assert status == 201
            ids = []
            for name in ("Lead", "Remote"):
                status, room = await _call(http, b, "POST", "/api/classrooms", key,
                                           {"school_id": school["id"], "name": name})
                assert status == 201
                ids.append(room["id"])
            now = datetime.fromtimestamp(time.time(), UTC)
            status, lesson = await _call(http, a, "POST", "/api/lessons", key, {
                "subject": "数学", "title": "Fractions", "lead_classroom_id": ids[0],
                "remote_classroom_ids": [ids[1]],
                "start": (now + timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=50)).isoformat(),
            })
            assert status == 201, lesson
            # the same classroom booked again at the same time, on the other node: a conflict
            status, body = await _call(http, b, "POST", "/api/lessons", key, {
                "subject": "语文", "title": "Poems", "lead_classroom_id": ids[1], "remote_classroom_ids": [ids[0]],
                "start": (now + timedelta(minutes=10)).isoformat(), "end": (now + timedelta(minutes=40)).isoformat(),
            })
            assert status == 409 and body["error"]["code"] == "conflict", body
            status, links = await _call(http, b, "GET", f"/api/lessons/{lesson['id']}/links", key)
            assert status == 200, links
        remote = next(link for link in links["links"] if link["role"] == "remote")
        classroom = PingingClassroom(a.base_url, remote["token"])  # issued by B, joined at A
        try:
            joined = await classroom.join()
            assert joined["type"] == "joined", joined
        finally:
            await classroom.close()
        # and A's signer verifies what B signed (the same secret, not the same process)
        assert a.signer.verify(remote["token"]).classroom_id == ids[1]
        async with aiohttp.ClientSession() as http, http.get(b.base_url + "/metrics") as resp:
            metrics = await resp.text()
        assert f'classroom_schedule_database_info{{backend="{store_target.backend}"}} 1.0' in metrics
        assert "classroom_schedule_database_unavailable_total 0.0" in metrics


def test_serve_without_its_database_exits_with_the_reason(postgres: PostgresServer, tmp_path: Path) -> None:
    """`classroom serve --database URL` with a wrong password: exit status 1 and the reason, not a
    traceback, and the password nowhere in the output."""
    url = postgres.create_database("serve_bad_password")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLASSROOM_", "PG"))}
    env["CLASSROOM_DATABASE_PASSWORD"] = "wrong-password-4711"
    env["CLASSROOM_MEDIA_UDP_PORT"] = "0"  # a media port of its own (tests may run side by side)
    done = subprocess.run(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--no-demo", "--database", url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "classroom serve: the schedule database is unavailable" in done.stderr
    assert "password authentication failed" in done.stderr
    assert "Traceback" not in done.stderr and "wrong-password-4711" not in done.stderr + done.stdout
