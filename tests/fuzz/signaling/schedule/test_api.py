"""REST fuzzing of the schedule API (docs/api.md) of a real ``classroom serve``: every operation
of the served OpenAPI document, with bodies built from its schemas and then broken (wrong types,
missing and unknown fields, huge and deeply nested values, unicode), odd path parameters and
query strings, and hostile heads sent as raw bytes: non-UTF-8 and non-ASCII ``Authorization``,
huge headers, wrong and lying ``Content-Type``/``Content-Encoding``/``Content-Length``, other
charsets, a BOM, chunked bodies. Nothing may be answered 5xx (the schemathesis run in
tests/integration/schedule/test_property.py covers the schema-valid side in-process)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.fuzz.harness import SEED, Live, budget, report, watch_figures
from tests.fuzz.mutate import DEEP, INTERESTING_TEXT, deep_text, garble_text, wild_value


async def raw_request(port: int, head: bytes, body: bytes, timeout: float = 1.0) -> int:
    """One request exactly as given; returns the status (0: the server closed without answering;
    -1: no answer within ``timeout``, e.g. a Content-Length longer than the body sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0
    except TimeoutError:
        return -1
    finally:
        writer.close()
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def from_schema(rng: random.Random, schema: dict[str, Any], doc: dict[str, Any], ids: dict[str, str],
                depth: int = 0) -> Any:
    """A value for ``schema`` (refs followed), right most of the time."""
    if "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    if depth > 4:
        return None
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return from_schema(rng, rng.choice(schema[key]), doc, ids, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if kind == "object" or "properties" in schema:
        out = {}
        for name, sub in schema.get("properties", {}).items():
            if name in schema.get("required", []) or rng.random() < 0.6:
                out[name] = ids.get(name) or from_schema(rng, sub, doc, ids, depth + 1)
        return out
    if kind == "array":
        return [from_schema(rng, schema.get("items", {}), doc, ids, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "integer":
        return rng.choice([0, 1, 7, 30, -1])
    if kind == "number":
        return rng.choice([0.5, 1.0, 30.0])
    if kind == "boolean":
        return rng.random() < 0.5
    if schema.get("format") == "date-time":
        return rng.choice(["2026-11-23T09:00:00+08:00", "2026-11-23T09:45:00+08:00", "2026-13-45T99:00:00Z"])
    if schema.get("format") == "date":
        return rng.choice(["2026-11-23", "2027-01-01", "2026-02-30"])
    return rng.choice(["数学", "Fractions", "x", ""])


def q(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def break_value(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.7:
        value = dict(value)
        key = rng.choice(list(value))
        op = rng.randrange(3)
        if op == 0:
            del value[key]
        elif op == 1:
            value[key] = wild_value(rng)
        else:
            value[key] = break_value(rng, value[key])
        if rng.random() < 0.2:
            value[rng.choice(INTERESTING_TEXT) or "x"] = wild_value(rng)
        return value
    return wild_value(rng)


AUTH_BYTES = [b"Bearer \xff\xfe", b"Bearer \xe4\xbd\xa0\xe5\xa5\xbd", b"Bearer " + b"A" * 9000, b"Basic Og==",
              b"Bearer cka_adm_x.y", b"bearer", b"", b"Bearer \x00", b"Bearer \r", b"\xc3\x28",
              b"Bearer cka_adm_" + b"0" * 12 + b"." + b"\x80" * 20]


class Api:
    def __init__(self, live: Live, key: str, ids: dict[str, str], doc: dict[str, Any]) -> None:
        self.live, self.key, self.ids, self.doc = live, key, ids, doc
        self.port = live.server.port
        self.statuses: dict[int, int] = {}

    def request(self, rng: random.Random) -> tuple[bytes, bytes]:
        paths = self.doc["paths"]
        path = rng.choice(list(paths))
        methods = list(paths[path])
        method = rng.choice(methods) if rng.random() < 0.9 else rng.choice(["delete", "put", "options", "trace"])
        method = method.upper()
        op = paths[path].get(method.lower(), {})
        for name in ("school_id", "classroom_id", "lesson_id"):
            value = self.ids.get(name, "x") if rng.random() < 0.7 else garble_text(rng, self.ids.get(name, "x"))
            path = path.replace("{" + name + "}", q(value) if rng.random() < 0.9 else value)
        if rng.random() < 0.3:
            path += "?" + rng.choice(["date=2026-11-23", "date=" + q(rng.choice(INTERESTING_TEXT)), "date",
                                       "week=%ff", "a=1&a=2", "%", "date=2026-11-23&" * 50])
        body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        body: Any = None
        if body_schema is not None or rng.random() < 0.2:
            body = from_schema(rng, body_schema or {"type": "object"}, self.doc, self.ids)
            if rng.random() < 0.7:
                body = break_value(rng, body)
        text = json.dumps(body, allow_nan=True).encode() if body is not None else b""
        if DEEP.encode() in text:
            text = text.replace(json.dumps(DEEP).encode(), deep_text(rng).encode())
        headers = [b"Host: 127.0.0.1", b"Connection: close"]
        auth = b"Bearer " + self.key.encode() if rng.random() < 0.75 else rng.choice(AUTH_BYTES)
        headers.append(b"Authorization: " + auth)
        op_h = rng.randrange(12)
        content_type = b"application/json"
        if op_h == 0:
            content_type = rng.choice([b"text/plain", b"application/json; charset=latin-1", b"multipart/form-data",
                                       b"application/json; charset=\xff", b"", b"application/x-www-form-urlencoded"])
        elif op_h == 1:
            headers.append(b"Content-Encoding: " + rng.choice([b"gzip", b"deflate", b"br", b"zstd", b"x"]))
        elif op_h == 2:
            text = text.decode("utf-8", "surrogatepass").encode("utf-16") if text else b"\xff\xfe"
        elif op_h == 3:
            text = b"\xef\xbb\xbf" + text
        elif op_h == 4:
            headers.append(b"X-" + b"a" * 20 + b": " + b"v" * rng.choice([100, 9000, 70_000]))
        elif op_h == 5:
            headers += [b"X-Many-%d: 1" % i for i in range(rng.choice([50, 200]))]
        elif op_h == 6:
            headers.append(b"X-Bytes: " + rng.randbytes(20).replace(b"\r", b"").replace(b"\n", b""))
        elif op_h == 7:
            text = text[: rng.randrange(len(text) + 1)]
        headers.append(b"Content-Type: " + content_type)
        if op_h == 8 and text:
            chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(text), text)
            headers.append(b"Transfer-Encoding: chunked")
            return b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode("utf-8", "surrogatepass")) \
                + b"\r\n".join(headers) + b"\r\n", chunked
        length = len(text)
        if op_h == 9:
            length = rng.choice([0, len(text) + 10, 2**40, -1])
        if text or op_h == 9:
            headers.append(b"Content-Length: %d" % length)
        head = b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode("utf-8", "surrogatepass"))
        return head + b"\r\n".join(headers) + b"\r\n", text


async def setup_ids(live: Live, key: str) -> dict[str, str]:
    import urllib.request

    def post(path: str, body: dict[str, Any]) -> str:
        req = urllib.request.Request(live.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return str(json.loads(r.read())["id"])

    ids = {"school_id": post("/api/schools", {"name": "S"})}
    ids["lead_classroom_id"] = ids["classroom_id"] = post("/api/classrooms", {"school_id": ids["school_id"],
                                                                               "name": "lead"})
    r1 = post("/api/classrooms", {"school_id": ids["school_id"], "name": "r1"})
    ids["lead_teacher_id"] = post("/api/teachers", {"school_id": ids["school_id"], "name": "T"})
    ids["lesson_id"] = post("/api/lessons", {
        "subject": "s", "title": "t", "lead_classroom_id": ids["lead_classroom_id"], "remote_classroom_ids": [r1],
        "start": "2026-11-23T09:00:00+08:00", "end": "2026-11-23T09:45:00+08:00", "recurrence": {"until": "2027-06-01"},
    })
    return ids


@pytest.mark.timeout(240)
async def test_rest_bodies_and_headers(live: Live, record_property: Callable[[str, object], None]) -> None:
    seconds = budget(9.0)
    key = live.server.admin_key(wait_s=5)
    assert key is not None, "no bootstrap admin key in the banner"
    ids = await setup_ids(live, key)
    import urllib.request

    with urllib.request.urlopen(live.base_url + "/api/openapi.json", timeout=10) as r:
        doc = json.loads(r.read())
    api = Api(live, key, ids, doc)
    started = time.monotonic()
    end = started + seconds
    inputs = 0

    async def worker(rng: random.Random) -> None:
        nonlocal inputs
        while time.monotonic() < end:
            head, body = api.request(rng)
            inputs += 1
            live.sent(head[:200])
            status = await raw_request(api.port, head, body)
            api.statuses[status] = api.statuses.get(status, 0) + 1
            if status >= 500:
                live.http_5xx += 1
                live.internal_replies.append(f"HTTP {status} for {head[:400]!r} body {body[:300]!r}")

    rng = random.Random(SEED)
    await asyncio.gather(*(worker(random.Random(rng.random())) for _ in range(4)))
    elapsed = time.monotonic() - started
    res = live.check()
    report(record_property, "rest", inputs, elapsed, statuses=len(api.statuses), **watch_figures(res))
    print("  statuses:", dict(sorted(api.statuses.items())))
    assert api.statuses.get(200, 0) > 0 and api.statuses.get(400, 0) > 0 and api.statuses.get(401, 0) > 0
