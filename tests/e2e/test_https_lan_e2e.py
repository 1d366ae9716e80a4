"""HTTPS on a school-network address, in real Chromium.

A network namespace with a veth pair stands in for the school LAN (host side 10.77.0.1, namespace
side 10.77.0.2, no route out). ``classroom serve --host 10.77.0.1`` makes its own certificate (tls
"auto" on a non-loopback bind). The lead classroom's Chromium runs in the root namespace, the remote
classroom's inside the namespace (``ip netns exec``); both open ``https://10.77.0.1:PORT``, a
non-loopback origin, where only HTTPS gives a page the camera and microphone.

Certificate: the test does NOT pass ``--ignore-certificate-errors``. It trusts the server's generated
CA the way a school's IT person would on a Linux PC: imported into the NSS database that Chromium
reads (``$HOME/.pki/nssdb``, with ``certutil`` from libnss3-tools), so Chromium checks the
certificate's chain and its subjectAltName for 10.77.0.1 for real.

Then the same pages over plain ``http://10.77.0.1`` (a second server with ``--tls off``) must say
why the camera is unavailable instead of failing silently.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from signaling.tokens import TokenSigner
from tests.e2e.conftest import ROOT, SECRET
from tests.e2e.test_live_lesson_e2e import wait_for

pytestmark = pytest.mark.e2e

HOST_IP, NS_IP = "10.77.0.1", "10.77.0.2"


def sh(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


@pytest.fixture
def lan() -> Iterator[str]:
    """A namespace joined to the root namespace by a veth pair; yields the namespace's name."""
    tag = f"{os.getpid() % 100000}"
    ns, host_if, ns_if = f"hC-tls-{tag}", f"hCth{tag}", f"hCtn{tag}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        # no IPv6 on the pair: its link-local addresses would come a second or two after the links
        # are up, and Chromium fails a request under way at such an address change
        # (ERR_NETWORK_CHANGED: once the lead page's script, and the page never published)
        sh("sysctl", "-q", "-w", f"net.ipv6.conf.{host_if}.disable_ipv6=1")
        sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{ns_if}.disable_ipv6=1")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{NS_IP}/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def free_port_on(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def serve(tmp: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port_on(HOST_IP)
    # two servers on one address: each its own media port (the default 7882 would be taken twice)
    env = {**os.environ, "CLASSROOM_TOKEN_SECRET": SECRET, "CLASSROOM_MEDIA_ICE_ADDRESSES": HOST_IP,
           "CLASSROOM_MEDIA_UDP_PORT": "0"}
    log_path = tmp / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "serve", "--host", HOST_IP, "--port", str(port),
             "--data-dir", str(tmp / name), "--no-demo", *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    return proc, port, log_path


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1, context=context).read()
            return
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
    raise RuntimeError(f"server did not start: {log.read_text()}")


def trusting_home(tmp: Path, ca: Path) -> Path:
    """A $HOME whose NSS database trusts ``ca`` for websites (what Chromium on Linux reads)."""
    home = tmp / "home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    sh("certutil", "-N", "-d", f"sql:{db}", "--empty-password")
    sh("certutil", "-A", "-d", f"sql:{db}", "-n", "classroom-ca", "-t", "C,,", "-i", str(ca))
    return home


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context()  # ignore_https_errors stays False
    page = await context.new_page()
    page.on("console", lambda m: print(f"[page] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(url)
    return page


async def decoded(page: Page) -> tuple[int, int]:
    """(main video width, video frames decoded) on a remote page."""
    width = await page.evaluate("document.getElementById('main').videoWidth")
    stats = await page.evaluate("window.classroom.stats().then(s => s.inbound)")
    frames = sum(s.get("framesDecoded") or 0 for s in stats.values() if s["kind"] == "video")
    return int(width), int(frames)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def test_lesson_over_https_on_a_school_network(lan: str, tmp_path: Path) -> None:
    started = time.monotonic()
    signer = TokenSigner(SECRET.encode())
    proc, port, log = serve(tmp_path, "https")
    plain, plain_port, plain_log = serve(tmp_path, "plain", "--tls", "off")
    try:
        ca = tmp_path / "https" / "tls" / "ca.crt"
        base = f"https://{HOST_IP}:{port}"
        deadline = time.monotonic() + 30
        while not ca.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_healthy(proc, base, log, ssl.create_default_context(cafile=str(ca)))  # verifies the IP SAN
        wait_healthy(plain, f"http://{HOST_IP}:{plain_port}", plain_log)
        out = log.read_text()
        assert f"serving on {base}" in out and "0.0.0.0" not in out
        assert "CA SHA-256 fingerprint" in out and f"{base}/tls/ca.crt" in out
        assert f"Log in at {base}/bureau.html" in out

        home = trusting_home(tmp_path, ca)
        wrapper = tmp_path / "chromium-in-ns"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {lan} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        env = {**os.environ, "HOME": str(home)}
        async with async_playwright() as pw:
            root_browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True, env=env)
            ns_browser = await pw.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS,
                                                  headless=True, env=env)
            try:
                lead_token = signer.issue("tls", "lead", "lead", "主讲课堂", lesson_title="HTTPS lesson")
                lead = await open_page(root_browser, f"{base}/lead.html?token={lead_token}")
                assert await lead.evaluate("window.isSecureContext") is True
                await wait_for(lambda: lead.evaluate(
                    "document.getElementById('live').textContent.includes('LIVE')"), 20, "lead publishes")
                assert await lead.evaluate("document.getElementById('insecure')") is None

                remote_token = signer.issue("tls", "r1", "remote", "远端课堂", lesson_title="HTTPS lesson")
                remote = await open_page(ns_browser, f"{base}/remote.html?token={remote_token}")
                assert await remote.evaluate("window.isSecureContext") is True
                assert await remote.evaluate("document.getElementById('insecure')") is None

                async def playing() -> bool:
                    width, frames = await decoded(remote)
                    return width > 0 and frames > 0
                await wait_for(playing, 25, "the remote classroom (in the namespace) to decode the lead")
                _, before = await decoded(remote)
                await asyncio.sleep(2)
                width, after = await decoded(remote)
                assert width > 0 and after > before + 10, (before, after)
                # the remote classroom publishes its own camera too (it has one, on a secure origin)
                outbound = await remote.evaluate("window.classroom.stats().then(s => s.outbound)")
                assert any(s["kind"] == "video" and (s.get("packets") or 0) > 0 for s in outbound.values())

                # The same pages over plain http:// on the LAN address: no camera, and they say why.
                plain_base = f"http://{HOST_IP}:{plain_port}"
                bad_remote = await open_page(ns_browser, f"{plain_base}/remote.html?token={remote_token}")
                bad_lead = await open_page(root_browser, f"{plain_base}/lead.html?token={lead_token}")
                for page in (bad_remote, bad_lead):
                    assert await page.evaluate("window.isSecureContext") is False
                    await page.wait_for_selector("#insecure", timeout=5000)
                    text = await page.inner_text("#insecure")
                    assert "https://" in text and "摄像头" in text and "camera" in text, text
                    assert await page.get_attribute("#insecure-https", "href") == \
                        page.url.replace("http://", "https://", 1)
                await wait_for(lambda: bad_remote.evaluate(
                    "document.getElementById('state').className.includes('ok')"), 10, "insecure page still joins")
                assert await bad_remote.evaluate("document.getElementById('hand').disabled") is True
            finally:
                await ns_browser.close()
                await root_browser.close()
    finally:
        stop(proc)
        stop(plain)
    for path in (log, plain_log):
        assert "TranscodeForbidden" not in path.read_text(errors="replace")
    print(f"HTTPS LAN e2e took {time.monotonic() - started:.1f} s")
