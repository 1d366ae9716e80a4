"""Structure-aware fuzzing of the classroom WebSocket protocol (docs/protocol.md) against a real
``classroom serve``: every client message type and field, with good values, wrong types, missing
fields, huge and deep values, unicode and raw garbage, from a lead, two remote classrooms, an
observer and a connection that never joins — at once, while a watchdog classroom of another
lesson pings (tests/fuzz/harness.py).

Each fuzz message is followed by a ``ping`` on the same connection: the server handles a
connection's messages in order, so the ``pong`` proves the message was handled, and paces the
fuzzer at the server's speed. No reply may be an ``internal`` error; a closed connection (``leave``,
a frame over the transport limit, ``replaced``) is reopened and counted."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fuzz.harness import SEED, Counts, Live, budget, read_until_pong, report, watch_figures
from tests.fuzz.mutate import DEEP, INTERESTING_TEXT, deep, deep_text, garble_text, mutate_lines, wild_value
from tests.fuzz.offers import real_offer

DOCS = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
LESSON = "fuzz-ws"
CLASSROOMS = ["lead", "r1", "r2", "obs", "nobody", "watch", "", "LEAD", "r1 ", "課堂"]

# type -> {field: kind of good value}; the client → server table of docs/protocol.md
SPEC: dict[str, dict[str, str]] = {
    "join": {"token": "token"},
    "publish": {"sdp": "sdp", "sources": "sources"},
    "subscribe_answer": {"sdp": "sdp"},
    "ice": {"target": "target", "candidate": "candidate"},
    "raise_hand": {},
    "lower_hand": {},
    "grant_floor": {"classroom_id": "classroom"},
    "revoke_floor": {"classroom_id": "classroom"},
    "mute": {"classroom_id": "classroom"},
    "unmute": {"classroom_id": "classroom"},
    "spotlight": {"classroom_id": "classroom_or_null"},
    "ping": {},
    "leave": {},
    "end_lesson": {},
    "note": {"text": "note_text", "dimension": "dimension", "score": "score", "moment": "moment"},
}
# end_lesson (the lead's) closes every connection of the lesson: rare, so the others get deep
WEIGHTS = {"join": 4, "publish": 3, "leave": 1, "ice": 4, "subscribe_answer": 3, "end_lesson": 0.2}


def documented_client_types() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Client → server", 1)[1].split("\n## ", 1)[0]
    types: set[str] = set()
    for line in section.splitlines():
        cell = line.split("|")[1] if line.startswith("|") else ""
        types.update(re.findall(r"`([a-z_]+)`", cell))
    return types


def test_fuzzer_covers_every_documented_message_type() -> None:
    assert documented_client_types() == set(SPEC)


@dataclass
class Ctx:
    rng: random.Random
    tokens: dict[str, str]
    offer: str
    weird_tokens: list[str]

    def token(self) -> Any:
        rng = self.rng
        op = rng.randrange(6)
        if op == 0:
            return rng.choice(list(self.tokens.values()))
        if op == 1:
            return rng.choice(self.weird_tokens)
        if op == 2:
            return garble_text(rng, rng.choice(list(self.tokens.values())))
        if op == 3:
            t = rng.choice(list(self.tokens.values()))
            return t[: rng.randrange(len(t))]
        if op == 4:
            a, b = rng.sample(list(self.tokens.values()), 2)
            return a.split(".")[0] + "." + b.split(".")[1]
        return rng.choice(INTERESTING_TEXT)

    def value(self, kind: str) -> Any:
        rng = self.rng
        if kind == "token":
            return self.token()
        if kind == "sdp":
            return rng.choice([self.offer, mutate_lines(rng, self.offer), mutate_lines(rng, self.offer),
                               "v=0\r\n", "", garble_text(rng, self.offer)])
        if kind == "sources":
            labels = ["teacher", "screen", "students", "", "admin", "課", "x" * 300]
            mids = ["0", "1", "2", "", "99", "💩"]
            return {rng.choice(mids): rng.choice(labels) for _ in range(rng.randint(0, 3))}
        if kind == "target":
            return rng.choice(["publish", "subscribe", "publish", "subscribe", "both", ""])
        if kind == "candidate":
            if rng.random() < 0.2:
                return None
            cand: dict[str, Any] = {
                "candidate": rng.choice([
                    "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
                    "candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host",
                    "candidate:x", "", "candidate:1 1 tcp 1 ::1 9 typ srflx raddr 1.1.1.1 rport 0",
                    garble_text(rng, "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"),
                ]),
                "sdpMid": rng.choice(["0", "1", None, "", "99"]),
                "sdpMLineIndex": rng.choice([0, 1, None, -1, 2**40]),
            }
            if rng.random() < 0.3:
                cand[rng.choice(list(cand))] = wild_value(rng)
            if rng.random() < 0.1:
                del cand[rng.choice(list(cand))]
            return cand
        if kind == "classroom":
            return rng.choice(CLASSROOMS)
        if kind == "classroom_or_null":
            return rng.choice([*CLASSROOMS, None])
        if kind == "note_text":
            return rng.choice(["学生回答积极", "", " ", "x" * 2001, "a\x00b", "=1+1", *INTERESTING_TEXT])
        if kind == "dimension":
            return rng.choice(["师生互动", "学生参与", "", None, "不存在", "x" * 100])
        if kind == "score":
            return rng.choice([1, 3, 5, 0, 6, -1, None, 2**70])
        if kind == "moment":
            return rng.choice([None, 0, 1000, -5, 10**12, 2**70])
        raise AssertionError(kind)


def message(ctx: Ctx) -> str | bytes:
    """One fuzz frame: a text frame (JSON or not) or, rarely, a binary one."""
    rng = ctx.rng
    r = rng.random()
    if r < 0.04:  # raw garbage
        return rng.choice([
            "", "{", "[]", "null", "1", '"x"', "{\"v\":1,\"type\":\"ping\"", "\x00" * 10,
            json.dumps(deep(rng)), deep_text(rng), "{" * 100_000, '{"v":1,"type":"ping","type":"leave"}',
            '{"v":1,"type":"ping","id":NaN}', '{"v":1e400,"type":"ping"}', "9" * 5000,
            '{"v":1,"type":"ping","id":' + "9" * 5000 + "}",
        ])
    if r < 0.05:
        return rng.randbytes(rng.randint(0, 100))
    types = list(SPEC)
    mtype = rng.choices(types, [WEIGHTS.get(t, 2) for t in types])[0]
    msg: dict[str, Any] = {"v": 1, "type": mtype}
    for name, kind in SPEC[mtype].items():
        if kind == "candidate" or rng.random() < 0.95:
            msg[name] = ctx.value(kind)
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        op = rng.randrange(8)
        names = list(SPEC[mtype])
        if op == 0 and names:
            msg.pop(rng.choice(names), None)
        elif op == 1 and names:
            msg[rng.choice(names)] = wild_value(rng)
        elif op == 2:
            msg[rng.choice(["extra", "re", "code", "participant_id", "role", "__proto__"])] = wild_value(rng)
        elif op == 3:
            msg["v"] = rng.choice([0, 2, "1", 1.0, True, None, [1], -1, 2**70])
        elif op == 4:
            msg["type"] = rng.choice(["PING", "joined", "error", "pong", "", None, 1, ["ping"], "ping\x00"])
        elif op == 5:
            msg["id"] = wild_value(rng)
        elif op == 6:
            msg["big"] = "x" * rng.choice([60_000, 70_000, 300_000])
        else:
            msg = {k: msg[k] for k in rng.sample(list(msg), len(msg))}
    text = json.dumps(msg, allow_nan=True)
    if DEEP in text:
        text = text.replace(json.dumps(DEEP), deep_text(rng))
    if rng.random() < 0.003:
        text = json.dumps({**msg, "pad": "x" * (1 << 20)})  # over the transport's frame limit
    return text


def weird_tokens(live: Live) -> list[str]:
    signer = live.server.signer
    out = [
        signer.issue(LESSON, "r9", "remote", expires=time.time() - 10),
        signer.issue(LESSON, "r9", "remote", not_before=time.time() + 3600),
        signer.issue("", "", "remote"),
        signer.issue(LESSON, "課堂💩", "remote", name="\u202e" * 100),
        signer.issue("x" * 500, "y" * 500, "observer"),
        signer.issue(LESSON, "lead2", "lead"),  # a second lead: lead_present
        signer.issue("fuzz-watch", "watch", "remote"),  # the watchdog's classroom: must not be replaced? see below
    ][:-1]
    sign = signer._sign
    for claims in ({}, {"lesson_id": 1}, {"lesson_id": LESSON, "classroom_id": "z", "role": "king"},
                   {"lesson_id": LESSON, "classroom_id": "z", "role": "remote", "expires": "soon"},
                   [1, 2], "text", {"lesson_id": None, "classroom_id": [], "role": {}}):
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        out.append(payload + "." + sign(payload))
    out.append("not json." + sign("not json"))
    return out


async def fuzz_connection(live: Live, ctx: Ctx, token: str | None, end: float, counts: Counts) -> None:
    url = live.base_url.replace("http", "ws", 1) + "/ws"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < end:
            async with session.ws_connect(url, max_msg_size=0) as ws:
                ref = 10**6
                if token is not None:
                    await ws.send_str(json.dumps({"v": 1, "id": 1, "type": "join", "token": token}))
                while time.monotonic() < end and not ws.closed:
                    frame = message(ctx)
                    counts.inputs += 1
                    live.sent(frame)
                    try:
                        if isinstance(frame, bytes):
                            await ws.send_bytes(frame)
                        else:
                            await ws.send_str(frame)
                        ref += 1
                        await ws.send_str(json.dumps({"v": 1, "id": ref, "type": "ping"}))
                    except (ConnectionError, RuntimeError):
                        break
                    if not await read_until_pong(live, ws, ref, counts, frame):
                        break
            counts.reconnects += 1


@pytest.mark.timeout(240)
async def test_websocket_messages(live: Live, record_property: Callable[[str, object], None]) -> None:
    seconds = budget(9.0)
    tokens = {
        "lead": live.token(LESSON, "lead", "lead"),
        "r1": live.token(LESSON, "r1", "remote"),
        "r2": live.token(LESSON, "r2", "remote"),
        "obs": live.token(LESSON, "obs", "observer"),
    }
    offer = await real_offer()
    counts = Counts()
    started = time.monotonic()
    end = started + seconds
    weird = weird_tokens(live)
    tasks = [
        fuzz_connection(live, Ctx(random.Random(f"{SEED}-{name}"), tokens, offer, weird), tok, end, counts)
        for name, tok in [*tokens.items(), ("unjoined", None)]
    ]
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    res = live.check()
    errors = {k: v for k, v in counts.replies.items() if k.startswith("error:")}
    report(record_property, "websocket_messages", counts.inputs, elapsed, reconnects=counts.reconnects,
           error_codes=len(errors), **watch_figures(res))
    print("  replies:", dict(sorted(counts.replies.items())))
    assert counts.inputs > 100
    # the fuzzer reached deep: joins, floor events, SDP answers and refusals all happened
    for wanted in ("joined", "floor", "publish_answer", "error:bad_field", "error:forbidden", "error:sdp_invalid",
                   "error:bad_json", "error:not_joined"):
        assert counts.replies.get(wanted, 0) > 0, (wanted, counts.replies)
