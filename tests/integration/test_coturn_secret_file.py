"""deploy/coturn: a real coturn started by deploy/coturn/entrypoint.sh with deploy/coturn/turnserver.conf
reads its shared secret from a file (never on its command line), and accepts the time-limited
credentials the classroom server makes from the same file (media.turn_secret_file)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from classroom.config import load_config
from classroom.server import _ice_servers

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "coturn" / "entrypoint.sh"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sink(asyncio.DatagramProtocol):
    pass


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    secret_file = tmp_path / "turn_secret"
    secret_file.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    port = _free_udp_port()
    env = dict(os.environ, TURN_CONFIG=str(REPO / "deploy/coturn/turnserver.conf"),
               TURN_SECRET_FILE=str(secret_file), TURN_RUNTIME_DIR=str(tmp_path))
    log = open(tmp_path / "turn.log", "wb")
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--allow-loopback-peers", f"--pidfile={tmp_path}/turn.pid"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    time.sleep(0.7)
    try:
        assert proc.poll() is None, (tmp_path / "turn.log").read_text()
        yield port, secret_file, proc
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()


async def test_coturn_reads_its_secret_from_a_file(coturn: tuple[int, Path, subprocess.Popen[bytes]],
                                                   tmp_path: Path) -> None:
    port, secret_file, proc = coturn
    secret = secret_file.read_text(encoding="utf-8").strip()
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    assert b"turnserver" in cmdline and secret.encode() not in cmdline
    runtime = tmp_path / "turnserver-runtime.conf"
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
    assert secret not in (REPO / "deploy/coturn/turnserver.conf").read_text(encoding="utf-8")

    config = load_config(env={"CLASSROOM_MEDIA_TURN_URL": f"turn:127.0.0.1:{port}",
                              "CLASSROOM_MEDIA_TURN_SECRET_FILE": str(secret_file)})
    (ice,) = _ice_servers(config)
    transport, _ = await asyncio.wait_for(
        create_turn_endpoint(_Sink, ("127.0.0.1", port), ice["username"], ice["credential"]), 10)
    try:
        relayed = transport.get_extra_info("related_address") or transport.get_extra_info("sockname")
        assert relayed is not None
    finally:
        transport.close()

    with pytest.raises((TransactionFailed, ConnectionError, OSError)):
        await asyncio.wait_for(
            create_turn_endpoint(_Sink, ("127.0.0.1", port), ice["username"], "not-the-credential"), 10)


def test_entrypoint_refuses_a_missing_or_empty_secret(tmp_path: Path) -> None:
    env = dict(os.environ, TURN_CONFIG=str(REPO / "deploy/coturn/turnserver.conf"),
               TURN_SECRET_FILE=str(tmp_path / "missing"), TURN_RUNTIME_DIR=str(tmp_path))
    r = subprocess.run(["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "cannot read the TURN secret file" in r.stderr
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    env["TURN_SECRET_FILE"] = str(tmp_path / "empty")
    r = subprocess.run(["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "is empty" in r.stderr
