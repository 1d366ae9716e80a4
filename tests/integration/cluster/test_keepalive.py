"""The registry entry's keepalive thread (signaling/routing/keepalive.py) against a real
redis-server: it keeps an entry alive while the event loop's heartbeat is late, never creates
one, and lets it expire when the loop has not beaten within its deadline, or once stopped."""

from __future__ import annotations

import time

import redis

from signaling.routing.keepalive import Keepalive
from tests.redis_server import RedisServer


def _keepalive(server: RedisServer, key: str, deadline_s: float = 30.0) -> Keepalive:
    return Keepalive(server.url, key, ttl_s=0.6, interval_s=0.1, password=None, client_name="classroom-node:t:1",
                     loop_deadline_s=deadline_s)


def test_the_entry_outlives_its_ttl_while_the_thread_runs(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("ka:alive", "{}", px=600)
    keep = _keepalive(redis_server, "ka:alive")
    keep.start()
    try:
        time.sleep(1.5)  # 2.5 TTLs without a heartbeat of the loop's own
        assert client.exists("ka:alive") and keep.refreshed > 0
    finally:
        keep.stop()
    time.sleep(0.9)
    assert not client.exists("ka:alive")  # stopped: it expires as before


def test_it_never_creates_an_entry(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    keep = _keepalive(redis_server, "ka:absent")
    keep.start()
    try:
        time.sleep(0.4)
        assert not client.exists("ka:absent") and keep.refreshed == 0
    finally:
        keep.stop()


def test_a_stuck_loop_lets_the_entry_expire(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("ka:stuck", "{}", px=600)
    keep = _keepalive(redis_server, "ka:stuck", deadline_s=0.3)
    keep.start()
    try:
        time.sleep(1.2)  # no beat() for longer than the deadline
        assert not client.exists("ka:stuck")
    finally:
        keep.stop()
