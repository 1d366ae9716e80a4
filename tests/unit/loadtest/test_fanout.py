"""loadtest.fanout's window edge: a snapshot waits for a gap in the publisher's sending."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from loadtest.fanout import sending_gap


def _pub() -> Any:
    return SimpleNamespace(stats=SimpleNamespace(sent={"video": 0, "audio": 0}))


async def test_a_gap_is_found_between_bursts() -> None:
    pub = _pub()

    async def bursts() -> None:  # a packet every 1 ms for 50 ms, then silence
        for _ in range(50):
            pub.stats.sent["video"] += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(bursts())
    t0 = time.monotonic()
    assert await sending_gap(pub, gap_s=0.005, timeout_s=2.0)
    assert time.monotonic() - t0 >= 0.045  # not inside the burst
    await task


async def test_no_gap_within_the_timeout() -> None:
    pub = _pub()
    stop = asyncio.Event()

    async def steady() -> None:
        while not stop.is_set():
            pub.stats.sent["audio"] += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(steady())
    assert not await sending_gap(pub, gap_s=0.02, timeout_s=0.2)
    stop.set()
    await task
