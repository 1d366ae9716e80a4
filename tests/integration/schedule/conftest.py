"""Fixtures: a schedule API on 127.0.0.1 over a temp store, with a settable clock.

``env`` runs every test that takes it twice: on SQLite (a temp file) and on PostgreSQL (a fresh
database in one real server per test session, tests/postgres_server.py) — one store suite,
two backends."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from signaling.schedule import ScheduleStore, setup_schedule
from signaling.tokens import TokenSigner
from tests.postgres_server import PostgresServer

CST = timezone(timedelta(hours=8))
# Monday 23 November 2026, 07:00 in Beijing.
MONDAY_7AM = datetime(2026, 11, 23, 7, 0, tzinfo=CST).timestamp()
PUBLIC_URL = "http://classroom.test:8080"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()


class FakeLive:
    """What the signaling would report: classroom ids connected per live room."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {}

    def connected(self, lesson_id: str) -> list[str]:
        return list(self.rooms.get(lesson_id, []))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (started only when a test asks for it)."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


_db_names = itertools.count(1)


@dataclass
class StoreTarget:
    """Where a test's store lives: an SQLite file, or a fresh PostgreSQL database."""

    backend: str  # "sqlite" or "postgresql"
    target: str | Path  # what ScheduleStore.open takes
    password: str | None
    data_dir: Path  # a directory of the test's own (token secret, recordings)
    server: PostgresServer | None = None

    def open(self, clock: Callable[[], float] | None = None, **kw: Any) -> ScheduleStore:
        return ScheduleStore.open(self.target, clock=clock or FakeClock(MONDAY_7AM), password=self.password, **kw)

    def stored_bytes(self) -> bytes:
        """Everything the database holds, as bytes (to check that no secret is kept in clear)."""
        if self.backend == "sqlite":
            path = Path(self.target)
            return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        import psycopg

        out = []
        with psycopg.connect(str(self.target), password=self.password) as conn:
            tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
            for (table,) in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                    out.append(repr(row).encode())
        return b"\n".join(out)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> StoreTarget:
    if request.param == "sqlite":
        return StoreTarget("sqlite", tmp_path / "schedule.sqlite3", None, tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database(f"t{next(_db_names)}")
    return StoreTarget("postgresql", url, server.password, tmp_path, server)


@dataclass
class Env:
    client: TestClient[Any, Any]
    store: ScheduleStore
    signer: TokenSigner
    clock: FakeClock
    live: FakeLive
    key: str
    where: StoreTarget
    ids: dict[str, str] = field(default_factory=dict)

    def reopen(self) -> ScheduleStore:
        """The same database opened again (a restart)."""
        return self.where.open(clock=self.clock)

    def h(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def call(
        self, method: str, path: str, json: Any = None, key: str | None = None, **kw: Any
    ) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=json, headers=self.h(key), **kw)
        body = await resp.json(content_type=None)
        return resp.status, body

    def lesson_body(self, **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subject": "数学",
            "title": "Fractions",
            "lead_classroom_id": self.ids["lead"],
            "lead_teacher_id": self.ids["teacher"],
            "remote_classroom_ids": [self.ids["r1"], self.ids["r2"]],
            "start": "2026-11-23T09:00:00+08:00",
            "end": "2026-11-23T09:45:00+08:00",
        }
        body.update(over)
        return body


async def start_client(store: ScheduleStore, signer: TokenSigner, live: FakeLive) -> TestClient[Any, Any]:
    app = web.Application()
    setup_schedule(app, store, signer, live, PUBLIC_URL)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def populate(env: Env) -> None:
    async def post(path: str, body: dict[str, Any]) -> str:
        status, data = await env.call("POST", path, body)
        assert status == 201, data
        return str(data["id"])

    strong = await post("/api/schools", {"name": "No. 1 Middle School"})
    rural = await post("/api/schools", {"name": "Village School"})
    env.ids["strong"], env.ids["rural"] = strong, rural
    env.ids["lead"] = await post("/api/classrooms", {"school_id": strong, "name": "Lead room"})
    for n in (1, 2, 3):
        env.ids[f"r{n}"] = await post(
            "/api/classrooms",
            {
                "school_id": rural,
                "name": f"Remote {n}",
                "kind": "hardware" if n == 3 else "browser",
            },
        )
    env.ids["lead2"] = await post("/api/classrooms", {"school_id": strong, "name": "Lead room 2"})
    env.ids["teacher"] = await post("/api/teachers", {"school_id": strong, "name": "王老师"})
    env.ids["teacher2"] = await post("/api/teachers", {"school_id": strong, "name": "李老师"})


@pytest.fixture
async def env(store_target: StoreTarget) -> AsyncIterator[Env]:
    clock = FakeClock(MONDAY_7AM)
    store = store_target.open(clock=clock)
    signer = TokenSigner(b"s" * 32)
    live = FakeLive()
    key = store.ensure_bootstrap_admin()
    assert key is not None
    client = await start_client(store, signer, live)
    e = Env(client, store, signer, clock, live, key, store_target)
    await populate(e)
    try:
        yield e
    finally:
        await client.close()
        store.close()


@pytest.fixture
async def other_bureau(env: Env) -> dict[str, str]:
    """A second bureau with its own admin, school and classroom."""
    bureau = env.store.create_bureau("County B")
    _, key = env.store.create_admin(bureau.id, "b-admin")
    status, school = await env.call("POST", "/api/schools", {"name": "B school"}, key=key)
    assert status == 201
    status, room = await env.call("POST", "/api/classrooms", {"school_id": school["id"], "name": "B room"}, key=key)
    assert status == 201
    return {"key": key, "school": school["id"], "classroom": room["id"], "bureau": bureau.id}
