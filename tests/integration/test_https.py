"""classroom serve over HTTPS with the certificate it makes for itself (on loopback with tls "on"),
the plain loopback listener the recorder uses, and forwarded headers behind a proxy."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from classroom.config import Config
from classroom.proxy import forwarded_headers
from classroom.server import start_server
from classroom.tls import fingerprint


def https_config(tmp_path: Path) -> Config:
    config = Config()
    config.server.port = 0
    config.media.udp_port = 0  # the node's one media port, on a port the kernel picks (tests may run side by side)
    config.server.data_dir = str(tmp_path / "data")
    config.server.tls = "on"
    return config


async def test_https_with_generated_certificate(tmp_path: Path) -> None:
    srv = await start_server(https_config(tmp_path))
    try:
        assert srv.tls is not None and srv.tls.generated is not None
        base = srv.base_url
        assert base == f"https://127.0.0.1:{srv.port}"
        assert all(url.startswith(base + "/") for url in srv.demo_links.values())
        trust = ssl.create_default_context(cafile=str(srv.tls.generated.ca_path))
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz", ssl=trust) as r:
                assert r.status == 200
            async with http.get(base + "/tls/ca.crt", ssl=trust) as r:
                assert r.status == 200 and r.content_type == "application/x-x509-ca-cert"
                assert (await r.read()) == srv.tls.generated.ca_path.read_bytes()
            # a browser that does not trust the CA is refused (no silent downgrade)
            try:
                async with http.get(base + "/healthz") as r:
                    raise AssertionError("an untrusted certificate was accepted")
            except aiohttp.ClientConnectorCertificateError:
                pass
            # plain HTTP on the TLS port is not served
            try:
                async with http.get(base.replace("https", "http") + "/healthz") as r:
                    assert r.status != 200
            except aiohttp.ClientError:
                pass
            # the recorder's loopback listener: plain ws, another port
            assert srv.internal_port and srv.internal_port != srv.port
            assert srv.local_ws_url == f"ws://127.0.0.1:{srv.internal_port}/ws"
            async with http.ws_connect(srv.local_ws_url) as ws:
                await ws.send_json({"v": 1, "id": 1, "type": "join", "token": "bad"})
                reply = await ws.receive_json(timeout=5)
                assert reply["type"] == "error"
            # the schedule API builds its join links on the same base (GET /api/me says which)
            key = re.search(r"cka_adm_\S+", "\n".join(srv.extras["banner"]))
            assert key is not None
            async with http.get(base + "/api/me", ssl=trust,
                                headers={"Authorization": f"Bearer {key.group(0)}"}) as r:
                assert r.status == 200 and (await r.json())["public_url"] == base
            # the classroom protocol over wss with the trusted CA
            async with http.ws_connect(base.replace("https", "wss") + "/ws", ssl=trust) as ws:
                await ws.send_json({"v": 1, "id": 1, "type": "join", "token": "bad"})
                assert (await ws.receive_json(timeout=5))["type"] == "error"
        ca_first = fingerprint(srv.tls.generated.ca)
        server_first = fingerprint(srv.tls.generated.server)
    finally:
        await srv.stop()
    again = await start_server(https_config(tmp_path))  # a restart reuses both certificates
    try:
        assert again.tls is not None and again.tls.generated is not None
        assert not again.tls.generated.created_ca and not again.tls.generated.issued_server
        assert fingerprint(again.tls.generated.ca) == ca_first
        assert fingerprint(again.tls.generated.server) == server_first
    finally:
        await again.stop()


async def test_loopback_default_stays_plain_http(tmp_path: Path) -> None:
    config = https_config(tmp_path)
    config.server.tls = "auto"
    srv = await start_server(config)
    try:
        assert srv.tls is None and srv.internal_port == 0
        assert srv.base_url == f"http://127.0.0.1:{srv.port}"
        assert srv.local_ws_url == f"ws://127.0.0.1:{srv.port}/ws"
        assert not (tmp_path / "data" / "tls").exists()
    finally:
        await srv.stop()


async def echo(request: web.Request) -> web.StreamResponse:
    if request.path == "/ws":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"remote": request.remote, "scheme": request.scheme, "host": request.host})
        await ws.close()
        return ws
    return web.json_response({"remote": request.remote, "scheme": request.scheme, "host": request.host})


async def test_forwarded_headers_behind_a_proxy() -> None:
    app = web.Application(middlewares=[forwarded_headers])
    app.router.add_get("/echo", echo)
    app.router.add_get("/ws", echo)
    headers = {"X-Forwarded-For": "6.6.6.6, 192.0.2.7", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "classroom.example.cn"}
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/echo", headers=headers)
        assert await r.json() == {"remote": "192.0.2.7", "scheme": "https", "host": "classroom.example.cn"}
        r = await client.get("/echo")
        assert (await r.json())["remote"] == "127.0.0.1"
        # the WebSocket upgrade still works on the re-written request
        async with client.ws_connect("/ws", headers=headers) as ws:
            assert (await ws.receive_json())["remote"] == "192.0.2.7"
