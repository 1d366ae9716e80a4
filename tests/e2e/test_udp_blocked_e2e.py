"""A remote classroom whose school network blocks UDP still gets the lesson, in real Chromium.

The remote classroom's Chromium runs inside a network namespace (``loadtest.netem``'s link, prefix
``tb``: host side 10.88.X.1, classroom side 10.88.X.2, no route out) where nftables drops EVERY
UDP packet, in both directions, at the far end of each (ingress on the classroom's interface for
what comes in, ingress on the host side for what goes out: the sender sees no error, as behind a
real firewall). The lead's Chromium is in the root namespace, unimpaired.

The deployment is the documented one (docs/network.md): ``classroom serve --host 10.88.X.1`` with
the certificate it makes for itself (HTTPS, tls "auto"), and a real coturn started by
``deploy/coturn/entrypoint.sh`` with ``deploy/coturn/turnserver.conf``, its secret from a 0600
file and TLS with the classroom server's own certificate files (``<data>/tls/server.crt`` and
``server.key``, TURN_TLS_CERT/TURN_TLS_KEY). The pages get all three TURN URLs
(``media.turn_url``, its ``?transport=tcp`` twin, ``media.turn_tls_url``; a free port stands in
for 443). Both browsers trust the server's CA in their NSS database, as a school's PC would
(docs/https.md): no ``--ignore-certificate-errors``.

- ``none``: the control, nothing blocked. The remote decodes the lead straight over UDP (no relay),
  so the other cases' figures have a baseline and the harness itself is shown not to need TURN.
- ``udp``: all UDP blocked. The remote decodes the lead through TURN over TCP (or TLS).
- ``udp+3478``: all UDP and TCP to coturn's plain port blocked (a network that lets only HTTPS
  out). The remote decodes the lead through TURN over TLS.

Each prints the time from opening the page to the first decoded frame. The page is not forced to
relay (no ``?relay=1``): it finds out by itself that its direct candidates get no answer.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from loadtest.netem import Link, LinkSpec, free_index, run
from signaling.tokens import TokenSigner
from tests.e2e.conftest import ROOT, SECRET
from tests.e2e.test_live_lesson_e2e import wait_for

pytestmark = pytest.mark.e2e

PREFIX = "tb"
REPO = Path(__file__).resolve().parents[2]


def block_script(table: str, device: str, tcp_port: int | None) -> str:
    """An ``nft -f`` script: drop (and count) every IPv4 UDP packet arriving on ``device``, and
    TCP to or from ``tcp_port`` when given."""
    rules = ["    ip protocol udp counter drop"]
    if tcp_port is not None:
        rules.append(f"    tcp dport {tcp_port} counter drop")
        rules.append(f"    tcp sport {tcp_port} counter drop")
    return "\n".join([
        f"table netdev {table} {{}}",
        f"delete table netdev {table}",
        f"table netdev {table} {{",
        "  chain ingress {",
        f'    type filter hook ingress device "{device}" priority -500; policy accept;',
        *rules,
        "  }",
        "}",
    ]) + "\n"


def dropped(argv: list[str]) -> int:
    """Packets the first counter of an ``nft list table`` output dropped (the UDP rule)."""
    for line in run(argv, check=False).splitlines():
        if "counter packets" in line:
            parts = line.split()
            return int(parts[parts.index("packets") + 1])
    return 0


def free_port_on(address: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on ``address``."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((address, 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
        return port


def trusting_home(tmp: Path, ca: Path) -> Path:
    """A $HOME whose NSS database trusts ``ca`` (what Chromium on Linux reads)."""
    home = tmp / "home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for argv in (["certutil", "-N", "-d", f"sql:{db}", "--empty-password"],
                 ["certutil", "-A", "-d", f"sql:{db}", "-n", "classroom-ca", "-t", "C,,", "-i", str(ca)]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
    return home


@dataclass
class Deployment:
    link: Link
    base: str
    turn_port: int
    tls_port: int
    home: Path
    signer: TokenSigner
    server_log: Path
    turn_log: Path


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    assert shutil.which("turnserver"), "coturn is missing: tests/run.sh installs it"
    index = free_index(start=60, prefix=PREFIX)
    with Link(LinkSpec(index, prefix=PREFIX)) as link:
        host = link.spec.host_ip
        turn_port, tls_port, port = (free_port_on(host) for _ in range(3))
        secret_file = tmp_path / "turn_secret"
        secret_file.write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
        secret_file.chmod(0o600)
        env = {**os.environ, "CLASSROOM_TOKEN_SECRET": SECRET, "CLASSROOM_MEDIA_ICE_ADDRESSES": host,
               "CLASSROOM_MEDIA_TURN_URL": f"turn:{host}:{turn_port}",
               "CLASSROOM_MEDIA_TURN_TLS_URL": f"turns:{host}:{tls_port}",
               "CLASSROOM_MEDIA_TURN_SECRET_FILE": str(secret_file),
               "CLASSROOM_MEDIA_UDP_PORT": "0"}  # the one media port on a port the kernel picks
        server_log = tmp_path / "server.log"
        data = tmp_path / "data"
        with open(server_log, "ab") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "classroom.cli", "serve", "--host", host, "--port", str(port),
                 "--data-dir", str(data), "--no-demo"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        turn: subprocess.Popen[bytes] | None = None
        try:
            ca, cert, key = data / "tls" / "ca.crt", data / "tls" / "server.crt", data / "tls" / "server.key"
            base = f"https://{host}:{port}"
            context = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert server.poll() is None, server_log.read_text()
                try:
                    if context is None and ca.exists():
                        context = ssl.create_default_context(cafile=str(ca))
                    if context is not None:
                        urllib.request.urlopen(base + "/healthz", timeout=1, context=context).read()
                        break
                except (OSError, ssl.SSLError):
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError(f"server did not start: {server_log.read_text()}")
            # coturn as deploy/compose.yaml starts it, with the classroom server's certificate
            turn_log = tmp_path / "turn.log"
            turn_env = dict(os.environ, TURN_CONFIG=str(REPO / "deploy/coturn/turnserver.conf"),
                            TURN_SECRET_FILE=str(secret_file), TURN_RUNTIME_DIR=str(tmp_path),
                            TURN_TLS_CERT=str(cert), TURN_TLS_KEY=str(key))
            with open(turn_log, "wb") as out:
                turn = subprocess.Popen(
                    ["sh", str(REPO / "deploy/coturn/entrypoint.sh"), f"--listening-ip={host}",
                     f"--relay-ip={host}", f"--listening-port={turn_port}", f"--tls-listening-port={tls_port}",
                     f"--pidfile={tmp_path}/turn.pid"],
                    env=turn_env, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                assert turn.poll() is None, turn_log.read_text()
                try:
                    with socket.create_connection((host, tls_port), timeout=1) as raw, \
                            context.wrap_socket(raw, server_hostname=host):  # type: ignore[union-attr]
                        break  # coturn's TLS listener presents the classroom server's certificate
                except (OSError, ssl.SSLError):
                    time.sleep(0.2)
            else:
                raise AssertionError(f"coturn's TLS port does not answer: {turn_log.read_text()}")
            yield Deployment(link, base, turn_port, tls_port, trusting_home(tmp_path, ca),
                             TokenSigner(SECRET.encode()), server_log, turn_log)
        finally:
            if turn is not None:
                stop(turn)
            stop(server)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{PREFIX}-{index}-" not in netns


async def open_page(browser: Browser, url: str) -> Page:
    page = await (await browser.new_context()).new_page()  # certificate errors stay errors
    page.on("console", lambda m: print(f"[page] {m.type}: {m.text}")
            if m.type == "error" and "404" not in m.text else None)  # 404: the favicon
    await page.goto(url)
    return page


SELECTED_PAIR = """async () => {
    const r = await window.classroom.sub.getStats(); let out = null;
    r.forEach(s => { if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = r.get(s.selectedCandidatePairId);
        const local = r.get(pair.localCandidateId), remote = r.get(pair.remoteCandidateId);
        out = {local: local.candidateType, relayProtocol: local.relayProtocol || null,
               protocol: local.protocol, url: local.url || null, remote: remote.candidateType,
               remoteAddress: remote.address + ':' + remote.port}; } });
    return out; }"""

FRAMES = """async () => {
    const r = await window.classroom.sub.getStats(); let n = 0;
    r.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded || 0; });
    return n; }"""


@pytest.mark.parametrize("blocked", ["none", "udp", "udp+3478"])
async def test_a_classroom_without_udp_decodes_the_lead(deployment: Deployment, blocked: str) -> None:
    d = deployment
    spec = d.link.spec
    tcp_port = d.turn_port if blocked == "udp+3478" else None
    if blocked != "none":
        run(["ip", "netns", "exec", spec.netns, "nft", "-f", "-"],
            input_text=block_script(spec.down_loss_table, spec.cls_dev, tcp_port))
        run(["nft", "-f", "-"], input_text=block_script(spec.up_loss_table, spec.host_dev, tcp_port))
    wrapper = d.home.parent / "chromium-in-netns"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(d.link.exec_argv([CHROMIUM])) + ' "$@"\n')
    wrapper.chmod(0o755)
    env: dict[str, str | float | bool] = {**os.environ, "HOME": str(d.home)}

    def url(page: str, classroom: str, role: str) -> str:
        token = d.signer.issue("noudp", classroom, role, classroom, lesson_title="UDP blocked")
        return f"{d.base}/{page}?token={token}"

    async with async_playwright() as pw:
        lead_browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                headless=True, env=env)
        ns_browser = await pw.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS,
                                              headless=True, env=env)
        try:
            lead = await open_page(lead_browser, url("lead.html", "lead", "lead"))
            await wait_for(lambda: lead.evaluate(
                "document.getElementById('live').textContent.includes('LIVE')"), 30, "lead publishes")
            opened = time.monotonic()
            remote = await open_page(ns_browser, url("remote.html", "r1", "remote"))
            await wait_for(lambda: remote.evaluate("window.firstFrameMs !== null"), 60,
                           "the classroom without UDP decodes the lead")
            first_frame_s = time.monotonic() - opened
            page_ms = await remote.evaluate("window.firstFrameMs")
            pair = await remote.evaluate(SELECTED_PAIR)
            frames_before = await remote.evaluate(FRAMES)
            await asyncio.sleep(3)
            frames_after = await remote.evaluate(FRAMES)
            width = await remote.evaluate("document.getElementById('main').videoWidth")
        finally:
            await ns_browser.close()
            await lead_browser.close()
    down = dropped(["ip", "netns", "exec", spec.netns, "nft", "list", "table", "netdev", spec.down_loss_table])
    up = dropped(["nft", "list", "table", "netdev", spec.up_loss_table])
    print(f"\n[{blocked} blocked] first frame {page_ms / 1000:.2f} s from the page's navigation start "
          f"({first_frame_s:.2f} s after the test began opening it); selected pair {pair}; "
          f"{frames_after - frames_before} frames in 3 s at width {width}; "
          f"UDP dropped: {up} toward the server, {down} toward the classroom")
    assert width > 0 and frames_after > frames_before + 10, (width, frames_before, frames_after)
    assert pair is not None, pair
    if blocked == "none":
        assert pair["local"] != "relay", pair
        return
    assert pair["local"] == "relay", pair
    if blocked == "udp+3478":
        assert pair["relayProtocol"] == "tls", pair
    else:
        assert pair["relayProtocol"] in ("tcp", "tls"), pair
    assert up > 0, "the classroom never tried UDP: the test would prove nothing"
