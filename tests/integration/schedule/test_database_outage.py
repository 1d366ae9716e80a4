"""PostgreSQL going away under a running node (a relay between the store and the real server
is cut, then holds new connections silently, as a dead network does): calls fail at once with
503 database_unavailable (the reconnect waits in a background thread, never on the event loop),
a live lesson's joins go on without the database, and the store is back by itself when the
network is."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from signaling.schedule import ScheduleStore
from signaling.schedule.database import DatabaseUnavailable
from signaling.tokens import TokenSigner
from tests.postgres_server import PostgresServer

from .conftest import MONDAY_7AM, FakeClock, FakeLive, start_client


class Relay:
    """127.0.0.1:port → the PostgreSQL server; ``cut()`` drops every connection and then
    accepts new ones without answering (a black hole) until ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.blackhole = False
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.open.append(client)
                if self.blackhole:
                    continue  # held open, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.open.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.blackhole = True
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.open.clear()

    def restore(self) -> None:
        with self.lock:
            self.blackhole = False
            for s in self.open:  # the held connections: the reconnect's connect_timeout ends them anyway
                with contextlib.suppress(OSError):
                    s.close()
            self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _timed(fn: Any) -> float:
    started = time.monotonic()
    try:
        fn()
    except DatabaseUnavailable:
        pass
    else:
        raise AssertionError("the call should have failed: the database is away")
    return time.monotonic() - started


async def test_postgres_away_and_back(postgres: PostgresServer) -> None:
    url = postgres.create_database("outage")
    relay = Relay(postgres.port)
    store = ScheduleStore.open(url.replace(f":{postgres.port}/", f":{relay.port}/"), clock=FakeClock(MONDAY_7AM),
                               password=postgres.password)
    signer = TokenSigner(b"o" * 32)
    key = store.ensure_bootstrap_admin()
    assert key is not None
    client = await start_client(store, signer, FakeLive())
    try:
        bureau = store.list_bureaus()[0]
        relay.cut()
        # every call fails at once: the first sees the connection drop, the others do not wait
        # for the reconnect (which sits in connect_timeout against the black hole)
        durations = [_timed(lambda: store.list_schools(bureau.id)) for _ in range(20)]
        assert max(durations[1:]) < 0.05, durations
        resp = await client.get("/api/schools", headers={"Authorization": f"Bearer {key}"})
        body = await resp.json()
        assert resp.status == 503 and body["error"]["code"] == "database_unavailable", body
        assert resp.headers["Retry-After"]
        # a classroom of a live lesson still gets in (its token was verified); counted
        claims = signer.verify(signer.issue("les_0123456789ab@2026-11-23", "cls_x", "remote"))
        store.admit(claims)
        store.on_joined(claims.lesson_id, "cls_x")
        store.on_left(claims.lesson_id, "cls_x")
        assert store.outage_skips == 3
        assert store.database.failures >= 21
        relay.restore()
        deadline = time.monotonic() + 15
        while True:
            try:
                assert [b.id for b in store.list_bureaus()] == [bureau.id]
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline, "the store did not reconnect"
                time.sleep(0.1)
        store.create_school(bureau.id, "after the outage")
        resp = await client.get("/api/schools", headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 200
    finally:
        await client.close()
        store.close()
        relay.close()
