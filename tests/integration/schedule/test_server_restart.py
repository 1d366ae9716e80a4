"""The real ``classroom serve`` restarted mid-week on the same data dir: the administrator key,
the lessons, the join history and the links issued before the restart all still work (the
token secret lives in the data dir)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[3]
CST = timezone(timedelta(hours=8))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(data_dir: Path, port: int, log: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLASSROOM_TOKEN_SECRET"}
    env["CLASSROOM_MEDIA_UDP_PORT"] = "0"  # a media port of its own (tests may run side by side)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "serve", "--port", str(port),
             "--data-dir", str(data_dir), "--no-demo"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def api(session: aiohttp.ClientSession, key: str, method: str, url: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    async with session.request(method, url, json=body, headers=headers) as resp:
        data = await resp.json()
        assert resp.status < 300, data
        return data


async def join(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    async with session.ws_connect(url.replace("http", "ws", 1) + "/ws") as ws:
        await ws.send_str(json.dumps({"v": 1, "type": "join", "id": 1, "token": token}))
        while True:
            msg = json.loads((await ws.receive(timeout=10)).data)
            if msg["type"] in ("joined", "error"):
                await ws.send_str(json.dumps({"v": 1, "type": "leave"}))
                return dict(msg)


async def test_restart_mid_week_keeps_lessons_links_and_history(tmp_path: Path) -> None:
    data, port, log = tmp_path / "data", free_port(), tmp_path / "server.log"
    now = datetime.now(CST)
    start = now - timedelta(minutes=5)
    async with aiohttp.ClientSession() as session:
        with serve(data, port, log) as url:
            found = re.search(r"cka_[A-Za-z0-9_]+\.[A-Za-z0-9_-]+", log.read_text())
            for _ in range(50):
                if found:
                    break
                time.sleep(0.1)
                found = re.search(r"cka_[A-Za-z0-9_]+\.[A-Za-z0-9_-]+", log.read_text())
            assert found, log.read_text()
            key = found.group(0)
            school = await api(session, key, "POST", f"{url}/api/schools", {"name": "S"})
            rooms = [
                await api(
                    session,
                    key,
                    "POST",
                    f"{url}/api/classrooms",
                    {"school_id": school["id"], "name": name},
                )  # fmt: skip
                for name in ("lead", "remote")
            ]
            lesson = await api(
                session,
                key,
                "POST",
                f"{url}/api/lessons",
                {
                    "subject": "数学",
                    "title": "Restart",
                    "lead_classroom_id": rooms[0]["id"],
                    "remote_classroom_ids": [rooms[1]["id"]],
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=45)).isoformat(),
                },
            )
            links = await api(session, key, "GET", f"{url}/api/lessons/{lesson['id']}/links")
            remote = next(x for x in links["links"] if x["role"] == "remote")
            joined = await join(session, url, remote["token"])
            assert joined["type"] == "joined", joined
            assert joined["lesson_id"] == lesson["id"]

        with serve(data, port, log) as url:
            assert log.read_text().count("cka_") == 1  # the key was printed once only
            lessons = await api(session, key, "GET", f"{url}/api/lessons")
            assert [x["id"] for x in lessons["lessons"]] == [lesson["id"]]
            live = await api(session, key, "GET", f"{url}/api/lessons/{lesson['id']}/live")
            assert [h["classroom_id"] for h in live["history"]] == [rooms[1]["id"]]
            assert live["status"] == "live"  # joined before the restart, still within its time
            # the link issued before the restart still admits its classroom
            joined = await join(session, url, remote["token"])
            assert joined["type"] == "joined", joined
            # and a forged variant of it does not
            forged = remote["token"][:-3] + ("AAA" if not remote["token"].endswith("AAA") else "BBB")
            refused = await join(session, url, forged)
            assert refused["type"] == "error" and refused["code"] == "token_invalid"
