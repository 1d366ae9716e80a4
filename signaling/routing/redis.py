"""``RedisRouter``: one node of a cluster. Redis holds control state only — the node registry, the
lesson → node placement and the relayed signaling — never media.

* Registry: every ``heartbeat_s`` (1 s) a node writes its entry (id, URLs, media addresses, load,
  the classrooms connected to each of its lessons) with a TTL of ``ttl_s`` (3 s). A node whose
  entry expired is dead: its lessons are placed again (on the next join of one of their
  classrooms), and the connections relayed to or from it are closed (pages reconnect).
* Placement: ``signaling/routing/placement.py`` (Lua: atomic, sticky, least loaded).
* Any node accepts any classroom's WebSocket: a join for a lesson held elsewhere turns the
  connection into a relay (``signaling/routing/relay.py``) to the owning node, which runs the
  session (floor, hands, spotlight are its own, one writer); the SDP answers are the owning node's,
  so media goes straight to it.
* Floor state: every change of a held lesson's floor (members, hands, granted floor, mute,
  spotlight) is written to ``classroom:floor:<lesson>`` (``signaling/routing/floorstate.py``); a
  node that takes a lesson over reads it before it opens the room, so the floor outlives the node.
* Redis away: lessons in progress go on (media, floor and local signaling need no Redis; relayed
  messages wait and are delivered in order when it is back), joins that need a placement get
  ``cluster_unavailable`` (the page retries); when Redis is back the node registers again and
  claims its lessons at once (within one heartbeat). Logged and counted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sfu.node import MediaNode
from signaling.floor import FloorConfig
from signaling.protocol import error_message
from signaling.room import Room
from signaling.routing.base import ClusterUnavailable, SessionFactory
from signaling.routing.floorstate import FLOOR_TTL_S, FloorWriter, decode
from signaling.routing.keepalive import Keepalive
from signaling.routing.local import LocalRouter
from signaling.routing.placement import CLAIM, FORGET, PLACE, RELEASE, ClusterKeys
from signaling.routing.relay import Outbox, RelayedSocket

log = logging.getLogger(__name__)

INBOX_MAXLEN = 20000
INBOX_BLOCK_MS = 1000
MAX_MOVES = 3
COORDINATION_ERRORS = (RedisError, OSError)


# a CLIENT LIST is reused this long by the joins that check the node they would be relayed to
CLIENT_NAMES_MAX_AGE_S = 0.25


@dataclass
class ClusterCounters:
    """Plain ints, copied into Prometheus by classroom/metrics.py."""

    redis_outages: int = 0
    redis_restored: int = 0
    unavailable_joins: int = 0
    nodes_declared_dead: int = 0
    relayed_to_owner: int = 0  # messages from classrooms connected here to their lessons' nodes
    relayed_to_client: int = 0  # messages from the lessons' nodes to classrooms connected here
    placements_rebuilt: int = 0
    lessons_given_up: int = 0  # after an outage another node held a lesson this node had open
    floors_restored: int = 0  # lessons opened here with the floor state their previous node left


@dataclass
class EdgeConnection:
    """A classroom connected here whose lesson another node holds."""

    conn_id: str
    ws: web.WebSocketResponse
    owner: str
    lesson_id: str
    join_text: str
    outbox: Outbox
    to_client: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    moves: int = 0
    server_closed: bool = False


class RedisRouter(LocalRouter):
    def __init__(
        self,
        media: MediaNode,
        url: str,
        node_id: str,
        *,
        password: str | None = None,
        heartbeat_s: float = 1.0,
        ttl_s: float = 3.0,
        prefix: str = "classroom:",
        takes_lessons: bool = True,
        floor_config: FloorConfig | None = None,
    ) -> None:
        super().__init__(media, floor_config)
        if not node_id or any(c in node_id for c in " :\n"):
            raise ValueError(f"node id {node_id!r}: letters, digits, '-', '_' or '.' only")
        self.node_id = node_id
        self.url = url
        self.keys = ClusterKeys(prefix)
        self.heartbeat_s = heartbeat_s
        self.ttl_s = ttl_s
        self.takes_lessons = takes_lessons
        self.instance = secrets.token_hex(8)  # tells a node restarted under the same id from its predecessor
        # every connection of this node carries this name: a node whose connections are all gone
        # (killed: the kernel closes them at once) is dead before its entry's TTL runs out
        self.client_name = f"classroom-node:{node_id}:{self.instance}"
        common: dict[str, Any] = {"decode_responses": True, "password": password, "socket_connect_timeout": 1.0,
                                  "retry": Retry(NoBackoff(), 0), "client_name": self.client_name}  # fmt: skip
        self._redis = aioredis.from_url(url, socket_timeout=2.0, **common)
        self._reader = aioredis.from_url(url, socket_timeout=INBOX_BLOCK_MS / 1000 + 2.0, **common)
        # the entry's TTL refreshed from a thread while the loop is busy (signaling/routing/keepalive.py)
        self.keepalive = Keepalive(url, self.keys.node(node_id), ttl_s, heartbeat_s, password=password,
                                   client_name=self.client_name)
        self._place = self._redis.register_script(PLACE)
        self._claim = self._redis.register_script(CLAIM)
        self._release = self._redis.register_script(RELEASE)
        self.available = False
        self.unavailable_since: float | None = None
        self.restored_at = 0.0
        self.live: dict[str, dict[str, Any]] = {}  # node id -> its registry entry, as last read
        self.edges: dict[str, EdgeConnection] = {}
        self.hosted: dict[str, RelayedSocket] = {}
        self.counters = ClusterCounters()
        # this node's URLs and media addresses for its registry entry (set by classroom/server.py)
        self.describe: Callable[[], dict[str, Any]] = dict
        self._factory: SessionFactory | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conn_ids = itertools.count(1)
        self._cpu = (time.monotonic(), sum(os.times()[:2]))
        self._cpu_share = 0.0
        self._last_inbox_id = "$"
        self.leaving = False  # shutting down: deregistered, no new sessions
        self._told_gone: set[str] = set()
        self._forget = self._redis.register_script(FORGET)
        self.fast_death = True  # CLIENT LIST is usable (off for good if it is refused or hides our own name)
        self._names: set[str] = set()  # Redis' client names, as last listed on a join (``_vanished``)
        self._names_at = -1e18
        self.started = time.time()
        self.floors = FloorWriter(self._write_floor, node_id)
        self._carried: dict[str, dict[str, Any]] = {}  # lesson -> floor state read, for its room's opening

    # -- life ---------------------------------------------------------------------------------

    def set_session_factory(self, factory: SessionFactory) -> None:
        self._factory = factory

    def node_url(self, node_id: str) -> str | None:
        url = (self.live.get(node_id) or {}).get("url")
        return str(url) if url else None

    async def start(self) -> None:
        try:
            await self._heartbeat_once()
            last = await self._redis.xrevrange(self.keys.inbox(self.node_id), count=1)
            self._last_inbox_id = str(last[0][0]) if last else "0-0"
        except COORDINATION_ERRORS as exc:
            self._lost(exc)  # the node serves its own lessons meanwhile and retries
            self._last_inbox_id = "$"
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat_loop()), loop.create_task(self._inbox_loop())]
        self.keepalive.start()
        log.info("cluster node %s on %s (heartbeat %.1f s, TTL %.1f s)", self.node_id,
                 self._safe_url(), self.heartbeat_s, self.ttl_s)

    async def close_all(self, reason: str = "the server is shutting down") -> None:
        """Shutting down: leave the cluster first (the lessons are free to be placed elsewhere,
        and the classrooms that reconnect at once are not placed here again), then close every
        connection (pages reconnect by themselves)."""
        await self._deregister()
        await super().close_all(reason)
        for sock in list(self.hosted.values()):
            await sock.close()
        await asyncio.sleep(0.05)  # let the outboxes hand the last entries to Redis

    async def _deregister(self) -> None:
        self.leaving = True
        await asyncio.get_running_loop().run_in_executor(None, self.keepalive.stop)
        if not self.available:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for lesson in list(self.rooms):
                    # the script's text, not its sha: a Redis restarted meanwhile has no script cache
                    pipe.eval(RELEASE, 0, self.keys.prefix, lesson, self.node_id)
                pipe.delete(self.keys.node(self.node_id))
                pipe.srem(self.keys.nodes, self.node_id)
                await pipe.execute()
        except COORDINATION_ERRORS:
            pass

    async def stop(self) -> None:
        if not self.leaving:
            await self._deregister()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.floors.close()
        await self._redis.aclose()
        await self._reader.aclose()

    def _safe_url(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@")
        return self.url

    # -- availability -------------------------------------------------------------------------

    def _lost(self, exc: BaseException) -> None:
        if self.available or self.unavailable_since is None:
            self.counters.redis_outages += 1
            self.unavailable_since = time.monotonic()
            log.warning("cluster: Redis (%s) is unavailable: %s; lessons on this node go on, joins that need "
                        "a placement get cluster_unavailable", self._safe_url(), exc)
        self.available = False

    def _restored(self) -> None:
        self.available = True
        self.restored_at = time.monotonic()
        if self.unavailable_since is not None:
            self.counters.redis_restored += 1
            log.warning("cluster: Redis (%s) is back after %.1f s", self._safe_url(),
                        time.monotonic() - self.unavailable_since)
        self.unavailable_since = None

    # -- registry -----------------------------------------------------------------------------

    def _entry(self) -> dict[str, Any]:
        now, cpu = time.monotonic(), sum(os.times()[:2])
        then, cpu_then = self._cpu
        if now - then >= 0.5:
            self._cpu_share = round((cpu - cpu_then) / (now - then), 3)
            self._cpu = (now, cpu)
        stats = self.stats()
        return {
            "id": self.node_id,
            "instance": self.instance,
            "takes_lessons": self.takes_lessons,
            "since": self.started,
            **self.describe(),
            "lessons": stats["lessons"],
            "classrooms": sum(stats["classrooms"].values()),
            "tracks": stats["tracks"],
            "cpu": self._cpu_share,
            "connected": {lesson: LocalRouter.connected(self, lesson) for lesson in self.rooms},
            "at": time.time(),
        }

    async def _heartbeat_once(self) -> None:
        if self.leaving:
            return
        was_available = self.available
        ttl_ms = int(self.ttl_s * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.node(self.node_id), json.dumps(self._entry()), px=ttl_ms, get=True)
            pipe.sadd(self.keys.nodes, self.node_id)
            pipe.expire(self.keys.inbox(self.node_id), 300)
            pipe.smembers(self.keys.nodes)
            results = await pipe.execute()
        self.keepalive.beat()
        if was_available and results[0] is None:
            # our entry was gone although Redis answered: it expired (this heartbeat came later than
            # the TTL: an event loop stalled that long) or another node took us for dead (our
            # connections dropped for a moment); claim our lessons again, as after an outage
            log.warning("cluster: this node's registry entry had expired or been removed (a heartbeat later than "
                        "the %.0f s TTL?); registering again and claiming its lessons", self.ttl_s)
            was_available = False
        members = sorted(results[3])
        values = await self._redis.mget([self.keys.node(n) for n in members]) if members else []
        live: dict[str, dict[str, Any]] = {}
        for node, value in zip(members, values, strict=True):
            if value is None:
                continue
            try:
                live[node] = json.loads(value)
            except ValueError:
                log.warning("cluster: node %s has an unreadable registry entry", node)
        if not was_available:
            self._restored()
            await self._rebuild()
        await self._forget_disconnected(live)
        gone: set[str] = set()
        # Right after Redis came back (restarted empty) only the nodes that have beaten since are
        # registered: one absent now is not judged until every node had a heartbeat to register,
        # or the first node back would take the others for dead and close what they relay to it.
        settling = time.monotonic() - self.restored_at < self.ttl_s + self.heartbeat_s
        for node, entry in self.live.items():
            if node == self.node_id:
                continue
            if node not in live and settling:
                live[node] = entry  # judged after the settling time
            elif node not in live:
                self.counters.nodes_declared_dead += 1
                gone.add(node)
                log.warning("cluster: node %s declared dead (no heartbeat for %.0f s); its lessons are placed "
                            "again as their classrooms reconnect", node, self.ttl_s)
            elif live[node].get("instance") != entry.get("instance"):
                gone.add(node)  # died and came back within the TTL: what was relayed to it is gone
                log.warning("cluster: node %s was restarted; closing the connections relayed to it", node)
        self.live = live
        self._enforce_liveness(gone)

    async def _forget_disconnected(self, live: dict[str, dict[str, Any]]) -> None:
        """A node none of whose connections Redis still has is dead now (``kill -9``, a crash: the
        kernel closed its sockets): its entry is removed at once instead of after the TTL. Used
        only while Redis' CLIENT LIST shows this node's own name (not through a proxy or with the
        command refused), and not for a node registered in the last two heartbeats."""
        if not self.fast_death or time.monotonic() - self.restored_at < self.ttl_s + self.heartbeat_s:
            return
        try:
            names = {c.get("name", "") for c in await self._redis.client_list()}
        except RedisError as exc:
            if not isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
                self.fast_death = False
                log.info("cluster: CLIENT LIST refused (%s); dead nodes are found by their entries' TTL only", exc)
            return
        if self.client_name not in names:
            self.fast_death = False
            log.info("cluster: Redis does not show this node's connections (a proxy?); dead nodes are found by "
                     "their entries' TTL only")
            return
        now = time.time()
        for node, entry in list(live.items()):
            if node == self.node_id or now - float(entry.get("since") or now) < 2 * self.heartbeat_s:
                continue
            name = f"classroom-node:{node}:{entry.get('instance', '')}"
            if name in names:
                continue
            if await self._forget(args=[self.keys.prefix, node, str(entry.get("instance", ""))]):
                log.warning("cluster: node %s has no connection to Redis any more: dead", node)
                del live[node]

    async def _vanished(self, node: str) -> bool:
        """Whether ``node``, about to be relayed a classroom, has no connection to Redis any more
        (killed since the last heartbeat: its pages are reconnecting right now). Its entry is then
        removed, as the next heartbeat would, and the lesson placed again at once: the classroom is
        not relayed to a dead node and closed at that heartbeat (0.5-1 s more, then its backoff).
        Same rules as :meth:`_forget_disconnected`; one CLIENT LIST serves the joins of 0.25 s."""
        entry = self.live.get(node)
        if (not self.fast_death or entry is None
                or time.monotonic() - self.restored_at < self.ttl_s + self.heartbeat_s
                or time.time() - float(entry.get("since") or time.time()) < 2 * self.heartbeat_s):
            return False
        now = time.monotonic()
        if now - self._names_at > CLIENT_NAMES_MAX_AGE_S:
            try:
                self._names = {c.get("name", "") for c in await self._redis.client_list()}
            except RedisError:
                return False
            self._names_at = now
        instance = str(entry.get("instance", ""))
        if self.client_name not in self._names or f"classroom-node:{node}:{instance}" in self._names:
            return False
        if not await self._forget(args=[self.keys.prefix, node, instance]):
            return False
        log.warning("cluster: node %s has no connection to Redis any more: dead (found on a join)", node)
        return True

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s if self.available else min(self.heartbeat_s, 0.5))
            try:
                await self._heartbeat_once()
            except asyncio.CancelledError:
                raise
            except COORDINATION_ERRORS as exc:
                self._lost(exc)
            except Exception:
                log.exception("cluster heartbeat failed")

    async def _rebuild(self) -> None:
        """After (re)connecting: claim every lesson open here (Redis may have lost them; the
        set of this node's lessons is made again from what is open, so its load is right)."""
        await self._redis.delete(self.keys.lessons_of(self.node_id))
        for lesson, room in list(self.rooms.items()):  # a Redis restarted empty has no floor states
            self.floors.changed(lesson, room.floor.carried())
        for lesson in list(self.rooms):
            holder = await self._claim(args=[self.keys.prefix, lesson, self.node_id])
            self.counters.placements_rebuilt += 1
            if holder != self.node_id:
                # Another node opened the lesson while this one could not tell: one of the two must
                # go; the one that asks second does. Its classrooms reconnect and follow the placement.
                self.counters.lessons_given_up += 1
                log.error("cluster: lesson %s is held by node %s; closing it here (its classrooms reconnect)",
                          lesson, holder)
                room = self.rooms[lesson]
                await asyncio.gather(*(p.kick("the lesson moved to another node", "shutting_down")
                                       for p in list(room.participants.values())), return_exceptions=True)

    def _enforce_liveness(self, gone: set[str]) -> None:
        """Close relayed connections whose other end's node is dead or was restarted (absence is
        not judged right after Redis came back: the other nodes need a heartbeat to register)."""
        settled = time.monotonic() - self.restored_at >= self.ttl_s + self.heartbeat_s
        for edge in list(self.edges.values()):
            if edge.owner in gone or settled and edge.owner not in self.live:
                log.info("relay %s: node %s is dead; closing the classroom's connection (it reconnects)",
                         edge.conn_id, edge.owner)
                edge.to_client.put_nowait(None)
        for sock in list(self.hosted.values()):
            if sock.edge_node in gone or settled and sock.edge_node not in self.live:
                sock.end()

    # -- placement ----------------------------------------------------------------------------

    async def place(self, lesson_id: str) -> str | None:
        if lesson_id in self.rooms:
            return None  # open here (also while Redis is away)
        if self.leaving:
            raise ClusterUnavailable("this node is shutting down; retrying shortly")
        if not self.available:
            self.counters.unavailable_joins += 1
            raise ClusterUnavailable("the cluster's coordination (Redis) is unavailable; retrying shortly")
        try:
            holder = await self._place(args=[self.keys.prefix, lesson_id, self.node_id])
            if holder and holder != self.node_id and await self._vanished(str(holder)):
                holder = await self._place(args=[self.keys.prefix, lesson_id, self.node_id])
        except COORDINATION_ERRORS as exc:
            self._lost(exc)
            self.counters.unavailable_joins += 1
            raise ClusterUnavailable("the cluster's coordination (Redis) is unavailable; retrying shortly") from None
        if not holder:
            self.counters.unavailable_joins += 1
            raise ClusterUnavailable("no live node to hold the lesson; retrying shortly")
        if holder != self.node_id:
            return str(holder)
        await self._load_floor(lesson_id)
        return None

    async def release(self, room: Room) -> None:
        held = self.rooms.get(room.lesson_id) is room
        await super().release(room)
        if not held or room.lesson_id in self.rooms and self.rooms[room.lesson_id] is room:
            return
        if not self.leaving:  # everybody left: the next room of the lesson starts with an empty floor
            self.floors.forget(room.lesson_id)
        try:
            await self._release(args=[self.keys.prefix, room.lesson_id, self.node_id])
            if room.lesson_id in self.rooms:  # opened again meanwhile: take it back
                await self._claim(args=[self.keys.prefix, room.lesson_id, self.node_id])
            elif not self.leaving:  # a stopping node leaves the floor to the lesson's next node
                await self._redis.delete(self.keys.floor(room.lesson_id))
        except COORDINATION_ERRORS as exc:
            self._lost(exc)

    # -- floor state ---------------------------------------------------------------------------

    def room(self, lesson_id: str, title: str = "") -> Room:
        if lesson_id in self.rooms:
            return self.rooms[lesson_id]
        room = super().room(lesson_id, title)
        carried = self._carried.pop(lesson_id, None)
        if carried is not None:
            try:
                room.floor.restore(carried, int(time.time() * 1000))
                self.counters.floors_restored += 1
                log.info("lesson %s: opened on node %s with the floor state carried over (hands %s, floor %s, "
                         "spotlight %s, muted %s)", lesson_id, self.node_id, carried.get("queue"),
                         carried.get("granted"), carried.get("spotlight"), carried.get("muted"))
            except ValueError as exc:
                log.warning("lesson %s: the carried floor state is not usable (%s); starting with an empty floor",
                            lesson_id, exc)
        room.on_floor_change = lambda r: self.floors.changed(r.lesson_id, r.floor.carried())
        return room

    async def _load_floor(self, lesson_id: str) -> None:
        """This node is about to open the lesson's room: read the floor its previous node left."""
        if lesson_id in self.rooms:
            return
        try:
            state = decode({str(k): str(v) for k, v in (await self._redis.hgetall(self.keys.floor(lesson_id))).items()})
        except COORDINATION_ERRORS as exc:
            log.warning("lesson %s: its floor state could not be read (%s); starting with an empty floor",
                        lesson_id, exc)
            return
        if state is not None and state.get("members") and lesson_id not in self.rooms:  # not opened meanwhile
            self._carried[lesson_id] = state

    async def _write_floor(self, lesson_id: str, fields: dict[str, str]) -> None:
        key = self.keys.floor(lesson_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, FLOOR_TTL_S)
            await pipe.execute()

    # -- status over the cluster --------------------------------------------------------------

    def connected(self, lesson_id: str) -> list[str]:
        if lesson_id in self.rooms:
            return super().connected(lesson_id)
        for node, entry in self.live.items():
            if node != self.node_id:
                found = (entry.get("connected") or {}).get(lesson_id)
                if found is not None:
                    return sorted(str(c) for c in found)
        return []

    def health(self) -> dict[str, Any]:
        own = self.stats()
        nodes = [{k: entry.get(k) for k in ("id", "url", "lessons", "classrooms", "tracks", "cpu")}
                 for node, entry in sorted(self.live.items())]  # fmt: skip
        return {
            **own,
            "node_id": self.node_id,
            "cluster": {
                "available": self.available,
                "nodes": nodes,
                "lessons": sum(int(n.get("lessons") or 0) for n in nodes),
                "classrooms": sum(int(n.get("classrooms") or 0) for n in nodes),
            },
        }

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["cluster_counters"] = dict(vars(self.counters))
        out["cluster_available"] = self.available
        out["cluster_nodes"] = len(self.live)
        return out

    # -- the relay: this node as the classroom's end (edge) ------------------------------------

    async def _append(self, stream: str, fields: dict[str, str]) -> None:
        await self._redis.xadd(stream, fields, maxlen=INBOX_MAXLEN, approximate=True)  # type: ignore[arg-type]

    async def relay(self, ws: web.WebSocketResponse, node_id: str, lesson_id: str, first: str) -> None:
        conn_id = f"{self.node_id}:{next(self._conn_ids)}"
        edge = EdgeConnection(conn_id, ws, node_id, lesson_id, first,
                              Outbox(self._append, self.keys.inbox(node_id)))  # fmt: skip
        edge.outbox.on_overflow = lambda: edge.to_client.put_nowait(None)
        self.edges[conn_id] = edge
        edge.outbox.put(self._open_fields(edge))
        writer = asyncio.get_running_loop().create_task(self._to_client(edge))
        log.info("relay %s: lesson %s is held by node %s; relaying", conn_id, lesson_id, node_id)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.counters.relayed_to_owner += 1
                    edge.outbox.put({"o": "c2s", "c": conn_id, "d": msg.data})
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_json(error_message("binary_not_supported", "send JSON text frames"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            if not edge.server_closed:
                edge.outbox.put({"o": "bye_c", "c": conn_id})  # delivered by the outbox after we return
            writer.cancel()
            self.edges.pop(conn_id, None)

    def _open_fields(self, edge: EdgeConnection) -> dict[str, str]:
        return {"o": "open", "c": edge.conn_id, "l": edge.lesson_id, "f": self.node_id, "d": edge.join_text}

    async def _to_client(self, edge: EdgeConnection) -> None:
        while True:
            text = await edge.to_client.get()
            if text is None:
                await edge.ws.close()
                return
            try:
                await edge.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    def _moved(self, edge: EdgeConnection, holder: str) -> None:
        edge.moves += 1
        if edge.moves > MAX_MOVES or not holder:
            edge.to_client.put_nowait(json.dumps(error_message(
                "cluster_unavailable", "the lesson's node could not be settled; retrying shortly")))
            edge.to_client.put_nowait(None)
            return
        edge.owner = holder
        edge.outbox.retarget(self.keys.inbox(holder))
        edge.outbox.put(self._open_fields(edge))

    # -- the relay: this node as the lesson's owner -------------------------------------------

    async def _inbox_loop(self) -> None:
        stream = self.keys.inbox(self.node_id)
        while True:
            try:
                got: Any = await self._reader.xread({stream: self._last_inbox_id}, count=500, block=INBOX_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except COORDINATION_ERRORS:
                await asyncio.sleep(0.5)  # the heartbeat logs and counts the outage
                continue
            for _name, entries in got or []:
                for entry_id, fields in entries:
                    self._last_inbox_id = entry_id
                    try:
                        self._dispatch(fields)
                    except Exception:
                        log.exception("relay: entry %s could not be handled", entry_id)

    def _dispatch(self, f: dict[str, str]) -> None:
        op, conn_id = f.get("o"), f.get("c", "")
        if op == "open":
            self._open_hosted(conn_id, f.get("f", ""), f.get("l", ""), f.get("d", ""))
        elif op in ("c2s", "bye_c"):
            sock = self.hosted.get(conn_id)
            if sock is None:
                if op == "c2s":
                    self._gone(conn_id)
            elif op == "c2s":
                sock.feed(f.get("d", ""))
            else:
                sock.end()
        elif op in ("s2c", "bye_s", "moved"):
            edge = self.edges.get(conn_id)
            if edge is None:
                return
            if op == "s2c":
                self.counters.relayed_to_client += 1
                edge.to_client.put_nowait(f.get("d", ""))
            elif op == "bye_s":
                edge.server_closed = True
                edge.to_client.put_nowait(None)
            else:
                self._moved(edge, f.get("d", ""))
        else:
            log.warning("relay: unknown entry %r", op)

    def _gone(self, conn_id: str) -> None:
        """A message for a session this node does not have (it was restarted, or the session
        ended): tell the classroom's node to close the connection, once; the page reconnects."""
        edge_node = conn_id.rsplit(":", 1)[0]
        if not edge_node or conn_id in self._told_gone:
            return
        if len(self._told_gone) > 10000:
            self._told_gone.clear()
        self._told_gone.add(conn_id)
        Outbox(self._append, self.keys.inbox(edge_node)).put({"o": "bye_s", "c": conn_id})

    def _open_hosted(self, conn_id: str, edge_node: str, lesson_id: str, join_text: str) -> None:
        if not conn_id or not edge_node or self._factory is None:
            return
        outbox = Outbox(self._append, self.keys.inbox(edge_node))
        if self.leaving:  # the edge places the lesson again
            outbox.put({"o": "moved", "c": conn_id, "d": ""})
            return
        sock = RelayedSocket(conn_id, edge_node, lesson_id, outbox)
        outbox.on_overflow = sock.end
        self.hosted[conn_id] = sock
        sock.feed(join_text)
        task = asyncio.get_running_loop().create_task(self._host(sock))
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _host(self, sock: RelayedSocket) -> None:
        try:
            if sock.lesson_id not in self.rooms:
                try:
                    holder = await self._claim(args=[self.keys.prefix, sock.lesson_id, self.node_id])
                except COORDINATION_ERRORS as exc:
                    self._lost(exc)
                    holder = None
                if holder != self.node_id:
                    sock.outbox.put({"o": "moved", "c": sock.conn_id, "d": str(holder or "")})
                    return
                await self._load_floor(sock.lesson_id)
            assert self._factory is not None
            session = self._factory(sock)
            await session.run()
        finally:
            await sock.close()
            self.hosted.pop(sock.conn_id, None)
