"""Fixtures: a schedule API on 127.0.0.1 over a temp SQLite file, with a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from signaling.schedule import ScheduleStore, setup_schedule
from signaling.tokens import TokenSigner

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


@dataclass
class Env:
    client: TestClient[Any, Any]
    store: ScheduleStore
    signer: TokenSigner
    clock: FakeClock
    live: FakeLive
    key: str
    path: Path
    ids: dict[str, str] = field(default_factory=dict)

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
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = FakeClock(MONDAY_7AM)
    path = tmp_path / "schedule.sqlite3"
    store = ScheduleStore.open(path, clock=clock)
    signer = TokenSigner(b"s" * 32)
    live = FakeLive()
    key = store.ensure_bootstrap_admin()
    assert key is not None
    client = await start_client(store, signer, live)
    e = Env(client, store, signer, clock, live, key, path)
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
