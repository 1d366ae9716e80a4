"""Keep a node's registry entry alive from a thread of its own, so that a busy event loop is not
taken for a dead node.

The node's heartbeat (``RedisRouter._heartbeat_once``, on the event loop) writes the entry and
does everything else (the other nodes' liveness, rebuilding after an outage). Measured on the
shared 2-core machine at a load average of 20-26: heartbeats came more than the 3 s TTL apart
while the loop was busy with the pages of a lesson that had just moved to it, so the entries of
live nodes expired, both nodes declared each other dead, closed each other's relayed connections
and refused joins with ``cluster_unavailable`` ("no live node") — the failover took 19 s.

This thread re-sets the entry's TTL every ``interval_s`` (``PEXPIRE``: it never creates an entry,
so a node that left, or whose entry another node removed, stays removed until its own heartbeat
registers it again), as long as the event loop's heartbeat ran within ``loop_deadline_s``: a loop
stuck that long (a hang) lets the entry expire, and the node is dead to the others as before. A
process that is killed loses the thread with it; the TTL and ``CLIENT LIST`` still decide.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

log = logging.getLogger(__name__)

LOOP_DEADLINE_S = 30.0


class Keepalive:
    def __init__(self, url: str, key: str, ttl_s: float, interval_s: float, *, password: str | None,
                 client_name: str, loop_deadline_s: float = LOOP_DEADLINE_S) -> None:
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.interval_s = interval_s
        self.loop_deadline_s = loop_deadline_s
        self.beat_at = time.monotonic()  # the event loop's last heartbeat (set by the router)
        self.refreshed = 0
        self._client: Any = redis.Redis.from_url(url, password=password, client_name=client_name,
                                                 socket_timeout=1.0, socket_connect_timeout=1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster-keepalive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def beat(self) -> None:
        """The event loop's heartbeat just wrote the entry."""
        self.beat_at = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if time.monotonic() - self.beat_at > self.loop_deadline_s:
                continue  # the loop is stuck: let the entry expire
            try:
                if self._client.pexpire(self.key, self.ttl_ms):
                    self.refreshed += 1
            except (redis.RedisError, OSError):
                pass  # Redis away: the heartbeat logs and counts it

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        try:
            self._client.close()
        except (redis.RedisError, OSError):
            pass
