"""The registry right after Redis came back empty (signaling/routing/redis.py, ``_heartbeat_once``):
the first node to beat again must not take the others, not yet registered, for dead (that closed
the classrooms they relayed to it, and lost a hand raised during the outage). Two routers in one
process against a real redis-server, their heartbeats driven by hand."""

from __future__ import annotations

import asyncio

from sfu.node import MediaNode
from sfu.peer import PeerSettings
from signaling.routing.redis import COORDINATION_ERRORS, RedisRouter
from tests.redis_server import start_redis, stop_redis


async def beat(router: RedisRouter) -> None:
    try:
        await router._heartbeat_once()
    except COORDINATION_ERRORS as exc:
        router._lost(exc)


async def test_the_first_node_back_waits_for_the_others_to_register() -> None:
    redis = start_redis()
    a = RedisRouter(MediaNode(PeerSettings()), redis.url, "a", heartbeat_s=0.2, ttl_s=0.6)
    b = RedisRouter(MediaNode(PeerSettings()), redis.url, "b", heartbeat_s=0.2, ttl_s=0.6)
    try:
        for r in (a, b, a):
            await beat(r)
        assert set(a.live) == {"a", "b"}

        redis.stop()
        await beat(a)
        await beat(b)
        assert not a.available and not b.available
        redis.start()

        await beat(a)  # a is back first: b has not registered again yet
        assert a.available and "b" in a.live, a.live
        assert a.counters.nodes_declared_dead == 0
        await beat(b)
        await beat(a)
        assert a.live["b"]["instance"] == b.instance and a.counters.nodes_declared_dead == 0

        # after the settling time (TTL + one heartbeat) an absent node is dead, as always
        for _ in range(int((a.ttl_s + a.heartbeat_s) / a.heartbeat_s) + 2):  # b silent, a beating
            await asyncio.sleep(a.heartbeat_s)
            await beat(a)
        assert "b" not in a.live and a.counters.nodes_declared_dead == 1
    finally:
        for r in (a, b):
            await r._redis.aclose()
            await r._reader.aclose()
        stop_redis(redis)
