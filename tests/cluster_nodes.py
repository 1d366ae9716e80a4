"""Node processes for the cluster tests: real ``classroom serve`` processes (``--redis URL
--node-id ID``) sharing one data dir (schedule file, recordings) and one token secret file, on
127.0.0.1 and free ports. They import this checkout's packages (PYTHONPATH is passed on)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signaling.tokens import TokenSigner
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


def shared_secret(directory: Path) -> tuple[Path, TokenSigner]:
    """A 0600 token secret file (CLASSROOM_TOKEN_SECRET_FILE) and a signer with that secret."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "token_secret"
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return path, TokenSigner(secret.encode("ascii"))


@dataclass
class NodeProcess:
    node_id: str
    data_dir: Path
    secret_file: Path
    redis_url: str | None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["CLASSROOM_TOKEN_SECRET_FILE"] = str(self.secret_file)
        env["CLASSROOM_RECORDING_ENABLED"] = "false"
        env["CLASSROOM_MEDIA_UDP_PORT"] = "0"  # every node its own media port (several run at once)
        env.update(self.extra_env)
        args = [sys.executable, "-m", "classroom.cli", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--no-demo", "--tls", "off"]
        if self.redis_url:
            args += ["--redis", self.redis_url, "--node-id", self.node_id]
        self.log_path = self.data_dir.parent / f"node-{self.node_id}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.node_id} exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                self.health()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"node {self.node_id} did not answer /healthz: {self.log_tail()}")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base_url + "/healthz", timeout=2.0) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
