"""The floor-state writer of a cluster node: coalesced (newest wins), in order, kept on failure
and written again when Redis is back; the hash's fields read back."""

from __future__ import annotations

import asyncio
import json

from signaling.routing.floorstate import FloorWriter, decode, encode

STATE = {"members": {"lead": "lead", "r1": "remote"}, "queue": ["r1"], "granted": [], "muted": [], "spotlight": None}


class FakeRedis:
    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.calls = 0
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, lesson: str, fields: dict[str, str]) -> None:
        self.calls += 1
        await self.gate.wait()
        if self.down:
            raise ConnectionError("redis away")
        self.hashes[lesson] = dict(fields)


def test_encode_and_decode() -> None:
    fields = encode(STATE, "node-1", 12.5)
    assert fields["node"] == "node-1" and fields["at"] == "12.500"
    assert decode(fields) == STATE
    assert decode(None) is None and decode({}) is None
    assert decode({"state": "not json"}) is None and decode({"state": "[1]"}) is None


async def test_a_burst_of_changes_is_coalesced_and_the_newest_wins() -> None:
    redis = FakeRedis()
    writer = FloorWriter(redis.write, "node-1")
    redis.gate.clear()
    writer.changed("L", {**STATE, "queue": ["r0"]})
    await asyncio.sleep(0)  # its write is under way
    for i in range(1, 10):
        writer.changed("L", {**STATE, "queue": [f"r{i}"]})
    redis.gate.set()
    await asyncio.sleep(0.01)
    # the first write was under way; the nine changes made meanwhile are one more write
    assert redis.calls == 2 and json.loads(redis.hashes["L"]["state"])["queue"] == ["r9"]
    assert writer.pending == [] and writer.writes == 2
    await writer.close()


async def test_a_failed_write_is_kept_and_flushed_when_redis_is_back() -> None:
    redis = FakeRedis()
    writer = FloorWriter(redis.write, "node-1")
    redis.down = True
    writer.changed("L", STATE)
    await asyncio.sleep(0.01)
    assert writer.pending == ["L"] and writer.failures == 1 and "L" not in redis.hashes
    redis.down = False
    writer.flush_all()
    await asyncio.sleep(0.01)
    assert writer.pending == [] and decode(redis.hashes["L"]) == STATE
    await writer.close()


async def test_forget_drops_what_was_not_written() -> None:
    redis = FakeRedis()
    writer = FloorWriter(redis.write, "node-1")
    redis.down = True
    writer.changed("L", STATE)
    await asyncio.sleep(0.01)
    writer.forget("L")
    redis.down = False
    writer.flush_all()
    await asyncio.sleep(0.01)
    assert writer.pending == [] and "L" not in redis.hashes
    await writer.close()
