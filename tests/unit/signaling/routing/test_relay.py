"""The relay's pure parts: an outbox delivers one connection's entries in order and retries a
failed append without losing or reordering anything; a relayed socket is what a Session reads and
writes."""

from __future__ import annotations

import asyncio
import json

from aiohttp import WSMsgType

from signaling.routing.relay import Outbox, RelayedSocket


async def test_outbox_keeps_order_through_failures() -> None:
    seen: list[str] = []
    failures = iter([True, False, True, True, False, False, False])

    async def append(stream: str, fields: dict[str, str]) -> None:
        if next(failures, False):
            raise ConnectionError("redis away")
        seen.append(fields["d"])

    box = Outbox(append, "inbox:a")
    for i in range(5):
        box.put({"o": "c2s", "c": "b:1", "d": str(i)})
    for _ in range(200):
        if len(seen) == 5:
            break
        await asyncio.sleep(0.02)
    assert seen == ["0", "1", "2", "3", "4"]
    assert box.failures == 3 and not box.pending


async def test_outbox_retarget_sends_the_rest_elsewhere() -> None:
    got: list[tuple[str, str]] = []

    async def append(stream: str, fields: dict[str, str]) -> None:
        got.append((stream, fields["d"]))

    box = Outbox(append, "inbox:a")
    box.put({"d": "1"})
    await asyncio.sleep(0.01)
    box.retarget("inbox:c")
    box.put({"d": "2"})
    await asyncio.sleep(0.01)
    assert got == [("inbox:a", "1"), ("inbox:c", "2")]


async def test_relayed_socket_frames_replies_and_close() -> None:
    sent: list[dict[str, str]] = []

    async def append(stream: str, fields: dict[str, str]) -> None:
        sent.append(fields)

    sock = RelayedSocket("b:7", "b", "lesson", Outbox(append, "inbox:b"))
    sock.feed('{"type":"join"}')
    sock.feed('{"type":"ping"}')
    frames = [await sock.__anext__(), await sock.__anext__()]
    assert [f.type for f in frames] == [WSMsgType.TEXT, WSMsgType.TEXT]
    assert json.loads(frames[1].data) == {"type": "ping"}
    await sock.send_json({"type": "pong"})
    assert await sock.close() is True and sock.closed
    assert await sock.close() is False  # once
    await asyncio.sleep(0.01)
    assert [(f["o"], f.get("d")) for f in sent] == [("s2c", '{"type": "pong"}'), ("bye_s", None)]
    # the session's loop ends, and stays ended
    assert [f async for f in sock] == []
    assert [f async for f in sock] == []
    assert sock.get_extra_info("peername") is None


async def test_a_socket_ended_by_the_classroom_refuses_to_send() -> None:
    async def append(stream: str, fields: dict[str, str]) -> None:
        return None

    sock = RelayedSocket("b:8", "b", "lesson", Outbox(append, "inbox:b"))
    sock.end()
    assert sock.closed and [f async for f in sock] == []
    try:
        await sock.send_json({"type": "x"})
    except ConnectionError:
        pass
    else:
        raise AssertionError("a closed relayed socket accepted a message")
