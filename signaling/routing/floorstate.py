"""The floor state of a cluster's lessons in Redis, so that it outlives the node holding them.

The lesson's node is the floor's one writer (signaling/floor.py): on every change of a room's
floor it writes ``Floor.carried()`` — members, hand queue, granted floor, muted, spotlight — into
the hash ``classroom:floor:<lesson>`` (fields ``state``: the JSON, ``node``: the writer, ``at``:
unix seconds). A node that takes a lesson over (its node died) reads the hash before it opens
the room and rebuilds the floor from it (``Floor.restore``): the classroom that had the floor has
it again when it rejoins, raised hands are still raised, mute and spotlight hold.

Writes are coalesced per lesson (one task writes the newest state; a change made while it writes
is written right after), so a burst of floor events costs one or two round trips. A write that
fails (Redis away) is kept and written again when Redis is back (``flush_all``). The hash is
deleted when the lesson's room closes (everybody left), and expires after ``FLOOR_TTL_S``
without a change. Lost at a node's death: a change made in the last round trip before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

FLOOR_TTL_S = 12 * 3600  # a school day: a floor nobody changed for that long is not carried

Write = Callable[[str, dict[str, str]], Awaitable[None]]


def encode(state: dict[str, Any], node_id: str, at: float) -> dict[str, str]:
    """The hash's fields for ``state`` (``Floor.carried()``)."""
    return {"state": json.dumps(state, separators=(",", ":"), sort_keys=True), "node": node_id, "at": f"{at:.3f}"}


def decode(fields: dict[str, str] | None) -> dict[str, Any] | None:
    """The carried state in the hash, or ``None`` (no hash, or one that cannot be read)."""
    if not fields or "state" not in fields:
        return None
    try:
        state = json.loads(fields["state"])
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


class FloorWriter:
    """Coalesced, retried writes of lessons' floor state (see the module docstring)."""

    def __init__(self, write: Write, node_id: str) -> None:
        self.write = write
        self.node_id = node_id
        self._latest: dict[str, dict[str, Any]] = {}  # lesson -> newest state not yet written
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.writes = 0
        self.failures = 0

    def changed(self, lesson_id: str, state: dict[str, Any]) -> None:
        """The lesson's floor is now ``state``: write it soon (newest wins)."""
        self._latest[lesson_id] = state
        task = self._tasks.get(lesson_id)
        if task is None or task.done():
            self._tasks[lesson_id] = asyncio.get_running_loop().create_task(self._pump(lesson_id))

    def forget(self, lesson_id: str) -> None:
        """The room closed here: nothing more to write for it."""
        self._latest.pop(lesson_id, None)
        task = self._tasks.pop(lesson_id, None)
        if task is not None:
            task.cancel()

    @property
    def pending(self) -> list[str]:
        """Lessons whose newest state is not in Redis (a write failed)."""
        return sorted(self._latest)

    def flush_all(self) -> None:
        """Write every pending state again (Redis is back)."""
        for lesson_id, state in list(self._latest.items()):
            self.changed(lesson_id, state)

    async def _pump(self, lesson_id: str) -> None:
        while lesson_id in self._latest:
            state = self._latest[lesson_id]
            try:
                await self.write(lesson_id, encode(state, self.node_id, time.time()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: kept for flush_all
                self.failures += 1
                log.debug("floor state of %s not written (%s); written again when Redis is back", lesson_id, exc)
                return
            self.writes += 1
            if self._latest.get(lesson_id) is state:
                del self._latest[lesson_id]

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
