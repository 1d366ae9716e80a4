"""deploy/coturn with TURN over TCP and TLS: a real coturn started by deploy/coturn/entrypoint.sh,
TLS with the certificate the classroom server makes for itself (classroom/tls.py; TURN_TLS_CERT,
TURN_TLS_KEY), accepts the credentials of the ``ice_servers`` the server hands out for every URL
it lists (UDP, ``?transport=tcp``, ``turns:``), and relays what a classroom sends over TCP or TLS
to a peer over UDP (the way it reaches the SFU)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice.turn import create_turn_endpoint

from classroom.config import load_config
from classroom.server import _ice_servers
from classroom.tls import ensure_certificate

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "coturn" / "entrypoint.sh"
CONFIG = REPO / "deploy" / "coturn" / "turnserver.conf"


def _free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@dataclass
class Coturn:
    port: int
    tls_port: int
    secret_file: Path
    ca: Path


class _Sink(asyncio.DatagramProtocol):
    pass


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    secret_file = tmp_path / "turn_secret"
    secret_file.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    cert = ensure_certificate(tmp_path / "tls", ["127.0.0.1"])
    port, tls_port = _free_port(), _free_port()
    env = dict(os.environ, TURN_CONFIG=str(CONFIG), TURN_SECRET_FILE=str(secret_file), TURN_RUNTIME_DIR=str(tmp_path),
               TURN_TLS_CERT=str(cert.cert_path), TURN_TLS_KEY=str(cert.key_path))
    with open(tmp_path / "turn.log", "wb") as log:
        proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
             f"--tls-listening-port={tls_port}", "--allow-loopback-peers", f"--pidfile={tmp_path}/turn.pid"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (tmp_path / "turn.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "turn.log").read_text()
                time.sleep(0.1)
        yield Coturn(port, tls_port, secret_file, cert.ca_path)
    finally:
        proc.terminate()
        proc.wait(5)


async def test_the_listed_urls_relay_over_udp_tcp_and_tls(coturn: Coturn) -> None:
    config = load_config(env={"CLASSROOM_MEDIA_TURN_URL": f"turn:127.0.0.1:{coturn.port}",
                              "CLASSROOM_MEDIA_TURN_TLS_URL": f"turns:127.0.0.1:{coturn.tls_port}",
                              "CLASSROOM_MEDIA_TURN_SECRET_FILE": str(coturn.secret_file)})
    (ice,) = _ice_servers(config)
    assert ice["urls"] == [f"turn:127.0.0.1:{coturn.port}", f"turn:127.0.0.1:{coturn.port}?transport=tcp",
                           f"turns:127.0.0.1:{coturn.tls_port}"]
    trusted = ssl.create_default_context(cafile=str(coturn.ca))  # checks the chain and the IP SAN
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the SFU's side: plain UDP
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    try:
        for what, port, transport, context in (("udp", coturn.port, "udp", None),
                                               ("tcp", coturn.port, "tcp", None),
                                               ("tls", coturn.tls_port, "tcp", trusted)):
            relay, _ = await asyncio.wait_for(create_turn_endpoint(
                _Sink, ("127.0.0.1", port), ice["username"], ice["credential"], ssl=context,
                transport=transport), 10)
            try:
                payload = f"through TURN over {what}".encode()
                relay.sendto(payload, peer.getsockname())
                data, source = await asyncio.to_thread(peer.recvfrom, 2048)
                assert data == payload, what
                assert source[0] == "127.0.0.1" and source[1] not in (coturn.port, coturn.tls_port)  # a relay port
            finally:
                relay.close()
    finally:
        peer.close()


async def test_tls_is_refused_by_a_client_that_does_not_trust_the_certificate(coturn: Coturn) -> None:
    config = load_config(env={"CLASSROOM_MEDIA_TURN_TLS_URL": f"turns:127.0.0.1:{coturn.tls_port}",
                              "CLASSROOM_MEDIA_TURN_SECRET_FILE": str(coturn.secret_file)})
    (ice,) = _ice_servers(config)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.wait_for(create_turn_endpoint(
            _Sink, ("127.0.0.1", coturn.tls_port), ice["username"], ice["credential"],
            ssl=ssl.create_default_context(), transport="tcp"), 10)


def test_entrypoint_wants_both_tls_files_and_readable_ones(tmp_path: Path) -> None:
    secret_file = tmp_path / "turn_secret"
    secret_file.write_text("s3cret\n", encoding="utf-8")
    cert = ensure_certificate(tmp_path / "tls", ["127.0.0.1"])
    base = dict(os.environ, TURN_CONFIG=str(CONFIG), TURN_SECRET_FILE=str(secret_file), TURN_RUNTIME_DIR=str(tmp_path))
    for extra, message in (({"TURN_TLS_CERT": str(cert.cert_path)}, "go together"),
                           ({"TURN_TLS_KEY": str(cert.key_path)}, "go together"),
                           ({"TURN_TLS_CERT": str(tmp_path / "missing.crt"), "TURN_TLS_KEY": str(cert.key_path)},
                            "cannot read the TLS file")):
        r = subprocess.run(["sh", str(ENTRYPOINT)], env={**base, **extra}, capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and message in r.stderr, (extra, r.stderr)
