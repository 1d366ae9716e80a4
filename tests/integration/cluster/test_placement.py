"""Placement over two node processes and a real redis-server: lessons booked through the
schedule API and joined by bots through both nodes are split evenly (least loaded), and a lesson
joined by many classrooms through both nodes at once is held by exactly one node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from classroom.server import ADMIN_KEY_FILE
from tests.cluster_nodes import NodeProcess
from tests.redis_server import RedisServer

from .conftest import start_nodes
from .signaling_client import JoinOnly


@pytest.fixture(scope="module")
def two_nodes(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NodeProcess]]:
    nodes, _ = start_nodes(tmp_path_factory.mktemp("placement"), redis_server.url, 2)
    try:
        yield nodes
    finally:
        for n in nodes:
            n.stop()


async def _api(http: aiohttp.ClientSession, node: NodeProcess, method: str, path: str, key: str,
               body: Any = None) -> Any:
    async with http.request(method, node.base_url + path, json=body,
                            headers={"Authorization": f"Bearer {key}"}) as resp:
        data = await resp.json(content_type=None)
        assert resp.status in (200, 201), (resp.status, data)
        return data


async def test_forty_lessons_split_evenly(two_nodes: list[NodeProcess]) -> None:
    a, b = two_nodes
    key = (a.data_dir / ADMIN_KEY_FILE).read_text(encoding="utf-8").split()[0]
    now = datetime.fromtimestamp(time.time(), UTC)
    tokens: list[str] = []
    async with aiohttp.ClientSession() as http:
        school = await _api(http, a, "POST", "/api/schools", key, {"name": "Placement school"})
        for i in range(40):
            node = two_nodes[i % 2]  # the API on either node: one schedule
            lead = await _api(http, node, "POST", "/api/classrooms", key, {"school_id": school["id"], "name": f"L{i}"})
            remote = await _api(http, node, "POST", "/api/classrooms", key,
                                {"school_id": school["id"], "name": f"R{i}", "lead_capable": False})
            lesson = await _api(http, node, "POST", "/api/lessons", key, {
                "subject": "数学", "title": f"Lesson {i}", "lead_classroom_id": lead["id"],
                "remote_classroom_ids": [remote["id"]],
                "start": (now + timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=50)).isoformat(),
            })
            links = await _api(http, node, "GET", f"/api/lessons/{lesson['id']}/links", key)
            tokens.append(next(link["token"] for link in links["links"] if link["role"] == "lead"))
    # every lesson's lead joins at once, half through each node
    bots = [JoinOnly(two_nodes[i % 2].base_url, t) for i, t in enumerate(tokens)]
    try:
        replies = await asyncio.gather(*(bot.join() for bot in bots))
        assert all(r["type"] == "joined" for r in replies), [r for r in replies if r["type"] != "joined"][:3]
        split = [int(n.health()["lessons"]) for n in two_nodes]
        print(f"placement of 40 lessons over 2 nodes: {split}")
        assert sum(split) == 40 and all(16 <= s <= 24 for s in split), split
    finally:
        await asyncio.gather(*(bot.close() for bot in bots))


@pytest.mark.parametrize("round_", range(3))
async def test_fifty_classrooms_one_lesson_through_both_nodes(two_nodes: list[NodeProcess], round_: int) -> None:
    from signaling.tokens import TokenSigner

    signer = TokenSigner(Path(two_nodes[0].secret_file).read_bytes().strip())
    lesson = f"crowd-{round_}-{time.monotonic_ns()}"
    bots = [JoinOnly(two_nodes[i % 2].base_url, signer.issue(lesson, f"c{i}", "remote")) for i in range(50)]
    try:
        replies = await asyncio.gather(*(bot.join() for bot in bots))
        assert all(r["type"] == "joined" for r in replies), [r for r in replies if r["type"] != "joined"][:3]
        # every classroom is in one room: each saw the others join, and one node has it open
        opened = [int(n.health()["lessons"]) for n in two_nodes]
        assert sorted(opened) == [0, 1], opened
        owner = two_nodes[opened.index(1)]
        assert sum(owner.health()["classrooms"].values()) == 50
    finally:
        await asyncio.gather(*(bot.close() for bot in bots))
    deadline = time.monotonic() + 10
    while any(int(n.health()["lessons"]) for n in two_nodes) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert [int(n.health()["lessons"]) for n in two_nodes] == [0, 0]


async def test_whip_to_the_other_node_is_redirected_to_the_lessons_node(two_nodes: list[NodeProcess]) -> None:
    """A WHIP publisher that reaches the node not holding its lesson gets 307 to the node that
    does (RFC 9725 allows it); the lesson is not opened on a second node."""
    from aiortc import RTCPeerConnection

    from signaling.tokens import TokenSigner

    a, b = two_nodes
    signer = TokenSigner(Path(a.secret_file).read_bytes().strip())
    lesson = f"whip-{time.monotonic_ns()}"
    holder = JoinOnly(a.base_url, signer.issue(lesson, "inspector", "observer"))  # A holds the lesson
    pc = RTCPeerConnection()
    try:
        assert (await holder.join())["type"] == "joined"
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http, http.post(
            b.base_url + "/whip", data=pc.localDescription.sdp, allow_redirects=False,
            headers={"Content-Type": "application/sdp",
                     "Authorization": f"Bearer {signer.issue(lesson, 'r1', 'remote')}"},
        ) as resp:
            assert resp.status == 307, await resp.text()
            assert resp.headers["Location"] == a.base_url + "/whip"
        assert [int(n.health()["lessons"]) for n in two_nodes] == [1, 0]
    finally:
        await pc.close()
        await holder.close()


async def test_relay_keeps_order_and_loses_nothing(two_nodes: list[NodeProcess]) -> None:
    """A burst of 300 messages from a classroom on the node that does not hold its lesson: every
    reply comes back, in the order sent."""
    from signaling.tokens import TokenSigner

    a, b = two_nodes
    signer = TokenSigner(Path(a.secret_file).read_bytes().strip())
    lesson = f"order-{time.monotonic_ns()}"
    holder = JoinOnly(a.base_url, signer.issue(lesson, "inspector", "observer"))
    relayed = JoinOnly(b.base_url, signer.issue(lesson, "r1", "remote"))
    try:
        assert (await holder.join())["type"] == "joined"
        assert (await relayed.join())["type"] == "joined"
        assert [int(n.health()["lessons"]) for n in two_nodes] == [1, 0]  # B relays
        ws = relayed.ws
        assert ws is not None
        for i in range(300):
            await ws.send_json({"v": 1, "id": 1000 + i, "type": "ping"})
        got: list[int] = []
        while len(got) < 300:
            msg = await ws.receive_json(timeout=20)
            if msg.get("type") == "pong":
                got.append(int(msg["re"]))
        assert got == list(range(1000, 1300))
    finally:
        await relayed.close()
        await holder.close()


async def test_the_bureau_status_of_a_lesson_is_the_same_on_every_node(two_nodes: list[NodeProcess]) -> None:
    """The live "connected" of a lesson held by A, asked on B's API (the bureau page's status)."""
    a, b = two_nodes
    key = (a.data_dir / ADMIN_KEY_FILE).read_text(encoding="utf-8").split()[0]
    now = datetime.fromtimestamp(time.time(), UTC)
    async with aiohttp.ClientSession() as http:
        school = await _api(http, a, "POST", "/api/schools", key, {"name": "Status school"})
        lead = await _api(http, a, "POST", "/api/classrooms", key, {"school_id": school["id"], "name": "SL"})
        remote = await _api(http, a, "POST", "/api/classrooms", key,
                            {"school_id": school["id"], "name": "SR", "lead_capable": False})
        lesson = await _api(http, a, "POST", "/api/lessons", key, {
            "subject": "语文", "title": "Status", "lead_classroom_id": lead["id"],
            "remote_classroom_ids": [remote["id"]],
            "start": (now + timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=50)).isoformat(),
        })
        links = await _api(http, a, "GET", f"/api/lessons/{lesson['id']}/links", key)
        token = {link["role"]: link["token"] for link in links["links"]}
        lead_bot = JoinOnly(a.base_url, token["lead"])
        remote_bot = JoinOnly(b.base_url, token["remote"])
        try:
            assert (await lead_bot.join())["type"] == "joined"
            assert (await remote_bot.join())["type"] == "joined"
            deadline = time.monotonic() + 6
            while True:
                views = [await _api(http, n, "GET", f"/api/lessons/{lesson['id']}/live", key) for n in two_nodes]
                if all(sorted(v["connected"]) == sorted([lead["id"], remote["id"]]) for v in views):
                    break
                assert time.monotonic() < deadline, [v["connected"] for v in views]
                await asyncio.sleep(0.3)
        finally:
            await remote_bot.close()
            await lead_bot.close()


async def test_a_node_that_takes_no_lessons_relays_them(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``redis.takes_lessons: false`` (draining a node, or a signaling-only node): a lesson first
    joined through it is placed on a node that takes lessons, and the classroom is relayed."""
    from tests.cluster_nodes import shared_secret
    from tests.redis_server import start_redis, stop_redis

    base = tmp_path_factory.mktemp("drain")
    redis = start_redis()  # its own: the module's two nodes would take lessons too
    secret_file, signer = shared_secret(base / "secret")
    takes = NodeProcess("t1", base / "data", secret_file, redis.url)
    drained = NodeProcess("d1", base / "data", secret_file, redis.url,
                          extra_env={"CLASSROOM_REDIS_TAKES_LESSONS": "false"})
    bots: list[JoinOnly] = []
    try:
        for n in (takes, drained):
            n.start()
        for i in range(4):
            bot = JoinOnly(drained.base_url, signer.issue(f"drain-{i}", "lead", "lead"))
            bots.append(bot)
            assert (await bot.join())["type"] == "joined"
        assert int(drained.health()["lessons"]) == 0 and int(takes.health()["lessons"]) == 4
    finally:
        for bot in bots:
            await bot.close()
        for n in (drained, takes):
            n.stop()
        stop_redis(redis)
