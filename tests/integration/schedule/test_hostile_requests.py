"""Every endpoint of the OpenAPI document (and the recordings endpoints beside it), on the real
server, with credentials that are not UTF-8 or not ASCII and with bodies nested deeper than the
JSON parser goes: always a 4xx in the API's error format, never a 500 (issue #14, item 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from signaling.schedule.openapi import openapi_document
from tests.integration.hostile import admin_key, raw_http, running_server

EXTRA_ENDPOINTS = [
    ("get", "/api/lessons/{lesson_id}/recordings"),
    ("get", "/api/recordings/{lesson_id}/playback"),
]
BAD_CREDENTIALS = [
    b"Authorization: Bearer \xff\xfe\xfd",
    b"Authorization: Bearer cka_adm_\xc3\x28.secret",
    b"Authorization: Bearer cka_\xe9\x80\x80.abc",  # valid UTF-8, not ASCII
    b"Authorization: \x80",
    b"X-API-Key: \xff" + b"k" * 50,
    b"X-API-Key: cka_adm_1.\x7f\x01",
]
DEEP_BODIES = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"title": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
]


def endpoints() -> list[tuple[str, str, bool]]:
    """(method, path with ids filled in, takes a JSON body) for every documented operation."""
    out = []
    for path, ops in openapi_document()["paths"].items():
        for method, op in ops.items():
            if method.lower() not in ("get", "post", "put", "patch", "delete"):
                continue
            json_body = "application/json" in op.get("requestBody", {}).get("content", {})
            out.append((method.upper(), re.sub(r"\{[^}]+\}", "x1", path), json_body))
    for method, path in EXTRA_ENDPOINTS:
        out.append((method.upper(), re.sub(r"\{[^}]+\}", "x1", path), False))
    return out


async def test_bad_credential_bytes_and_deep_bodies_get_4xx_everywhere(tmp_path: Path) -> None:
    ops = endpoints()
    assert len(ops) >= 21
    async with running_server(tmp_path) as srv:
        key, _ = admin_key(srv)
        tried = 0
        for method, path, has_body in ops:
            for credential in BAD_CREDENTIALS:
                head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + credential
                body = b'{"name": "x"}' if has_body else b""
                if has_body:
                    head += b"\r\nContent-Type: application/json"
                status, headers, answer = await raw_http(srv.port, head, body)
                tried += 1
                public = path == "/api/openapi.json"  # needs no key: 200 or a 4xx for the header
                assert (status == 200 and public) or 400 <= status < 500, (method, path, credential, status)
                # (control characters are refused by aiohttp's parser with a plain-text 400
                # before the request reaches the application)
                if status >= 400 and headers.get("content-type", "").startswith("application/json"):
                    assert "error" in json.loads(answer), answer[:200]
            if not has_body:
                continue
            for body in DEEP_BODIES:
                head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                        "Content-Type: application/json").encode()  # fmt: skip
                status, _, answer = await raw_http(srv.port, head, body)
                tried += 1
                assert 400 <= status < 500, (method, path, body[:20], status, answer[:200])
                error = json.loads(answer)["error"]
                device_only = path.startswith("/api/device/")  # an administrator key is no device credential
                assert error["code"] in (("unauthorized",) if device_only else ("bad_json", "not_found")), error
        # one with a real key reaches the body check (not hidden behind a 404)
        head = (f"POST /api/schools HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json").encode()  # fmt: skip
        status, _, answer = await raw_http(srv.port, head, DEEP_BODIES[1])
        assert status == 400 and json.loads(answer)["error"]["code"] == "bad_json", answer
        assert "nested too deeply" in json.loads(answer)["error"]["message"]
        assert tried > 150
