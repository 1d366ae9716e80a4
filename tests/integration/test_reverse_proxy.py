"""deploy/nginx/classroom.conf, as documented, in front of ``classroom serve`` with
``behind_proxy``: a real nginx (Debian's) terminates TLS on 127.0.0.1, the server speaks plain
HTTP on loopback, links start with ``public_url``, and the signaling WebSocket is upgraded."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from classroom.config import Config
from classroom.server import start_server
from classroom.tls import ensure_certificate

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_config(tmp: Path, https_port: int, http_port: int, upstream_port: int) -> Path:
    """The deploy file with only its addresses, ports and certificate paths changed."""
    cert = ensure_certificate(tmp / "certs", ["localhost", "127.0.0.1", "::1"])
    site = (ROOT / "deploy" / "nginx" / "classroom.conf").read_text()
    for old, new in [
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/classroom/fullchain.pem", str(cert.cert_path)),
        ("/etc/ssl/classroom/privkey.pem", str(cert.key_path)),
    ]:
        assert site.count(old) == 1, old
        site = site.replace(old, new)
    (tmp / "classroom.conf").write_text(site)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir()
    main = tmp / "nginx.conf"
    main.write_text(f"""
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    include {tmp}/classroom.conf;
}}
""")
    return main


@pytest.fixture
def ports() -> tuple[int, int, int]:
    return free_port(), free_port(), free_port()


@pytest.fixture
def nginx(tmp_path: Path, ports: tuple[int, int, int]) -> Iterator[Path]:
    https_port, http_port, upstream_port = ports
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    main = nginx_config(conf_dir, https_port, http_port, upstream_port)
    test = subprocess.run([NGINX, "-t", "-c", str(main), "-g", "daemon off; master_process off;"],
                          capture_output=True, text=True, timeout=20)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([NGINX, "-c", str(main), "-g", "daemon off; master_process off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield conf_dir / "certs" / "ca.crt"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_behind_nginx(tmp_path: Path, ports: tuple[int, int, int], nginx: Path) -> None:
    https_port, http_port, upstream_port = ports
    public = f"https://127.0.0.1:{https_port}"
    config = Config()
    config.server.port = upstream_port
    config.media.udp_port = 0  # the node's one media port, on a port the kernel picks (tests may run side by side)
    config.server.data_dir = str(tmp_path / "data")
    config.server.behind_proxy = True
    config.server.public_url = public
    srv = await start_server(config)
    try:
        assert srv.tls is None and srv.base_url == public
        assert all(url.startswith(public + "/") for url in srv.demo_links.values())
        trust = ssl.create_default_context(cafile=str(nginx))
        async with aiohttp.ClientSession() as http:
            for _ in range(50):  # nginx starting
                try:
                    async with http.get(public + "/healthz", ssl=trust) as r:
                        assert r.status == 200 and (await r.json())["status"] == "ok"
                    break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("nginx did not answer")
            async with http.get(public + "/lead.html", ssl=trust) as r:
                assert r.status == 200 and "主讲课堂" in await r.text()
            async with http.get(public + "/metrics", ssl=trust) as r:
                assert r.status == 404  # not published through the proxy
            async with http.get(f"http://127.0.0.1:{http_port}/lead.html?x=1", allow_redirects=False) as r:
                assert r.status == 301 and r.headers["Location"] == "https://127.0.0.1/lead.html?x=1"
            # The classroom protocol through the proxy's WebSocket upgrade: a real join.
            token = srv.signer.issue("proxy", "r1", "remote", "远端课堂", lesson_title="Proxy lesson")
            async with http.ws_connect(public.replace("https", "wss") + "/ws", ssl=trust) as ws:
                await ws.send_json({"v": 1, "id": 1, "type": "join", "token": token})
                reply = await ws.receive_json(timeout=10)
                assert reply["type"] == "joined", reply
    finally:
        await srv.stop()
