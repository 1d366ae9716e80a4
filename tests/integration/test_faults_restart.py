"""Fault: ``kill -9`` of ``classroom serve`` and a restart on the same data directory and port.
The schedule (a lesson made through the API), the administrator's key and the join tokens the
API issued before the crash (the token secret lives in the data dir) all survive; page-like aiortc
clients reconnect with their old links and get media again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.e2e.conftest import free_port
from tests.integration.peers import ClassroomPeer, PatternTrack

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"\b(cka_[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+)")


def start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CLASSROOM_TOKEN_SECRET"}  # the secret of the data dir
    proc = subprocess.Popen([sys.executable, "-m", "classroom.cli", "serve", "--port", str(port), "--data-dir",
                             str(data), "--no-demo", "--log-level", "WARNING"],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start")


def api(port: int, key: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def lesson_media(url: str, lead_token: str, remote_token: str) -> tuple[ClassroomPeer, ClassroomPeer]:
    lead, remote = ClassroomPeer(url, lead_token), ClassroomPeer(url, remote_token)
    assert (await lead.connect())["type"] == "joined"
    assert (await remote.connect())["type"] == "joined"
    await lead.publish([(PatternTrack(), "teacher")])
    await remote.wait_frames("video", 5)
    return lead, remote


async def test_kill_9_and_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    data, log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port, log)
    peers: list[ClassroomPeer] = []
    try:
        m = KEY.search(log.read_text())
        assert m, log.read_text()
        key = m.group(1)
        school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
        lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
        remote_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1"})["id"]
        cst = timezone(timedelta(hours=8))
        now = datetime.now(cst).replace(second=0, microsecond=0)
        lesson = api(port, key, "POST", "/api/lessons", {
            "subject": "s", "title": "crash", "lead_classroom_id": lead_room, "remote_classroom_ids": [remote_room],
            "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=40)).isoformat(),
        })["id"]
        links = {x["role"]: x["token"] for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"]}
        peers[:] = await lesson_media(url, links["lead"], links["remote"])

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for p in peers:
            await p.close()
        proc = start(data, port, log)

        assert any(x["id"] == lesson for x in api(port, key, "GET", "/api/lessons")["lessons"])  # schedule + key
        peers[:] = await lesson_media(url, links["lead"], links["remote"])  # the old links, media again
        assert "Traceback" not in log.read_text()
    finally:
        for p in peers:
            await p.close()
        proc.terminate()
        proc.wait(10)
