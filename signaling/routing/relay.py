"""The signaling relay between nodes: a classroom connected to a node that does not hold its
lesson is served by the node that does, through Redis streams (each node reads one inbox stream).

* ``Outbox`` — the entries of one relayed connection in one direction, appended to the other
  node's inbox in order, one at a time; an append that fails (Redis away) is retried, so nothing
  is lost while both ends live.
* ``RelayedSocket`` — what a ``Session`` on the owning node talks to instead of a WebSocket:
  frames come from the inbox, ``send_json`` and ``close`` go back through an ``Outbox``.

Entry fields (all strings): ``o`` the operation, ``c`` the connection id (``<edge node>:<n>``),
``d`` a protocol message's JSON text, ``l`` the lesson, ``f`` the node that sent it.
Operations: ``open`` (edge → owner: a classroom's join, ``d`` = its join message), ``c2s`` (a
message from the classroom), ``bye_c`` (the classroom's connection closed), ``s2c`` (a message to
the classroom), ``bye_s`` (the owner closed the session), ``moved`` (the owner does not hold the
lesson after all: ``d`` = the holder's id; the edge opens there).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import WSMsgType

log = logging.getLogger(__name__)

Append = Callable[[str, dict[str, str]], Awaitable[None]]

OUTBOX_LIMIT = 5000  # entries waiting (Redis away): beyond that the connection is given up
RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0)


class Outbox:
    def __init__(self, append: Append, stream: str, on_overflow: Callable[[], None] | None = None) -> None:
        self.append = append
        self.stream = stream
        self.on_overflow = on_overflow
        self.pending: deque[dict[str, str]] = deque()
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._overflowed = False

    def put(self, fields: dict[str, str]) -> None:
        if len(self.pending) >= OUTBOX_LIMIT:
            if not self._overflowed:
                self._overflowed = True
                log.warning("relay to %s: %d entries waiting; giving the connection up", self.stream, OUTBOX_LIMIT)
                if self.on_overflow is not None:
                    self.on_overflow()
            return
        self.pending.append(fields)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pump())

    def retarget(self, stream: str) -> None:
        self.stream = stream

    async def _pump(self) -> None:
        tries = 0
        while self.pending:
            fields = self.pending[0]
            try:
                await self.append(self.stream, fields)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis' errors, OSError: retried in order
                self.failures += 1
                if tries == 0:
                    log.info("relay to %s: append failed (%s); retrying", self.stream, exc)
                await asyncio.sleep(RETRY_S[min(tries, len(RETRY_S) - 1)])
                tries += 1
                continue
            tries = 0
            self.pending.popleft()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class RelayedFrame(NamedTuple):
    type: WSMsgType
    data: str


class RelayedSocket:
    """A classroom's connection as the owning node sees it when the classroom came in through
    another node: the subset of ``aiohttp.web.WebSocketResponse`` a ``Session`` uses."""

    def __init__(self, conn_id: str, edge_node: str, lesson_id: str, outbox: Outbox) -> None:
        self.conn_id = conn_id
        self.edge_node = edge_node
        self.lesson_id = lesson_id
        self.outbox = outbox
        self._in: asyncio.Queue[str | None] = asyncio.Queue()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def feed(self, text: str) -> None:
        if not self._closed:
            self._in.put_nowait(text)

    def end(self) -> None:
        """The classroom's connection (or its node) is gone."""
        self._closed = True
        self._in.put_nowait(None)

    async def send_json(self, obj: Any) -> None:
        if self._closed:
            raise ConnectionError("the relayed connection is closed")
        self.outbox.put({"o": "s2c", "c": self.conn_id, "d": json.dumps(obj)})

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if self._closed:
            return False
        self._closed = True
        self.outbox.put({"o": "bye_s", "c": self.conn_id})
        self._in.put_nowait(None)
        return True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default  # no socket here: recorders, which check their peer address, never come relayed

    def __aiter__(self) -> RelayedSocket:
        return self

    async def __anext__(self) -> RelayedFrame:
        text = await self._in.get()
        if text is None:
            self._in.put_nowait(None)  # stays at its end
            raise StopAsyncIteration
        return RelayedFrame(WSMsgType.TEXT, text)
