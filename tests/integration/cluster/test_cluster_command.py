"""``classroom cluster --nodes 2``: a local redis-server (password in a 0600 file), two nodes on
one shared port (SO_REUSEPORT) and their own ports, the demo lesson's links printed once; a node
killed with -9 is started again by the supervisor; SIGINT stops every process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.cluster_nodes import ROOT
from tests.redis_server import free_port

from .signaling_client import JoinOnly


def _health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/healthz", timeout=2.0) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = predicate()
            if got:
                return got
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _node_pid(node_id: str) -> int | None:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            continue
        if f"--node-id\0{node_id}\0".encode() in cmdline and state != "Z":
            return int(pid)
    return None


async def test_cluster_of_two_nodes(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CLASSROOM_RECORDING_ENABLED"] = "false"
    out_path = tmp_path / "cluster.log"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "classroom.cli", "cluster", "--nodes", "2", "--port", str(port),
                                 "--data-dir", str(data)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        health = _wait(lambda: (h := _health(f"http://127.0.0.1:{port}")) and len(h["cluster"]["nodes"]) == 2 and h,
                       40, "two nodes in the registry")
        node_urls = sorted(n["url"] for n in health["cluster"]["nodes"])
        assert len(set(node_urls)) == 2 and all(u.startswith("http://127.0.0.1:") for u in node_urls)
        links = dict(line.split(" ", 1) for line in
                     _wait(lambda: (data / "demo-links.txt").read_text().splitlines(), 20, "demo links"))
        assert links["lead"].startswith(f"http://127.0.0.1:{port}/lead.html?token=")
        log = out_path.read_text()
        assert log.count("Demo lesson") == 1, log  # printed once, by the first node
        # the Redis password is in a 0600 file, on no command line
        conf = data / "redis" / "redis.conf"
        assert conf.stat().st_mode & 0o077 == 0
        password = next(line.split()[1] for line in conf.read_text().splitlines() if line.startswith("requirepass"))
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                assert password.encode() not in cmdline
        # the demo lesson's lead joins through the shared port, a remote through each node's own URL
        token = links["lead"].split("token=", 1)[1]
        lead = JoinOnly(f"http://127.0.0.1:{port}", token)
        remotes = [JoinOnly(url, links[f"remote-{i + 1}"].split("token=", 1)[1]) for i, url in enumerate(node_urls)]
        try:
            assert (await lead.join())["type"] == "joined"
            for r in remotes:
                joined = await r.join()
                assert joined["type"] == "joined", joined
        finally:
            for c in (lead, *remotes):
                await c.close()
        # kill -9 one node: the supervisor starts it again, on its own port
        victim = health["cluster"]["nodes"][0]
        pid = _node_pid(victim["id"])
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: _node_pid(victim["id"]) not in (None, pid) and _health(victim["url"]), 30,
              "the killed node to be started again")
        assert "exited with status -9; starting it again" in out_path.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0
    assert "classroom cluster: stopping" in out_path.read_text()
    for url in node_urls + [f"http://127.0.0.1:{port}"]:
        try:
            _health(url)
            raise AssertionError(f"{url} still answers after the cluster stopped")
        except OSError:
            pass
