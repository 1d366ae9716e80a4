"""The recordings API over real recording directories (manifests written by the recorder's own
writer, listed by the server's catalogue): who sees which recording, per lesson and per week,
the demo lesson, retention dates, and the bureau's recording default for new lessons (#15)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from classroom.recording_catalogue import RecordingCatalogue
from recorder.core import safe_name
from recorder.manifest import Manifest, write_manifest
from recorder.service import setup_recording
from signaling.schedule import ScheduleStore, setup_schedule
from signaling.schedule.recording_policy import RecordingPolicy
from signaling.schedule.recordings_api import setup_recordings_api
from signaling.tokens import TokenSigner

from .conftest import MONDAY_7AM, PUBLIC_URL, FakeClock, FakeLive


class Source:
    def __init__(self, catalogue: RecordingCatalogue) -> None:
        self.entries = catalogue.entries

    def status(self) -> dict[str, Any]:
        return {"enabled": True, "demo_lesson": True, "retention_days": 180.0, "disk_guard": None,
                "recording_now": []}


def record(data_dir: Path, room_id: str, title: str, started: datetime) -> None:
    directory = data_dir / "recordings" / safe_name(room_id)
    directory.mkdir(parents=True)
    write_manifest(directory / "manifest.json", Manifest(room_id, title, started, duration_ms=2_700_000, complete=True))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], ScheduleStore, str, Path]]:
    store = ScheduleStore.open(tmp_path / "schedule.sqlite3", clock=FakeClock(MONDAY_7AM))
    key = store.ensure_bootstrap_admin()
    assert key is not None
    app = web.Application()
    signer = TokenSigner(b"s" * 32)
    setup_schedule(app, store, signer, FakeLive(), PUBLIC_URL)
    service = setup_recording(app, tmp_path, ws_url="ws://127.0.0.1:9/ws", env_secret="r" * 32)
    setup_recordings_api(app, store, signer, FakeLive(), Source(RecordingCatalogue(service, tmp_path, 180.0)),
                         RecordingPolicy.in_data_dir(tmp_path))
    c: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await c.start_server()
    try:
        yield c, store, key, tmp_path
    finally:
        await c.close()
        store.close()


async def call(c: TestClient[Any, Any], key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    r = await c.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    return r.status, await r.json(content_type=None)


async def test_who_sees_which_recording(client: tuple[TestClient[Any, Any], ScheduleStore, str, Path]) -> None:
    c, store, key, data_dir = client
    _, school = await call(c, key, "POST", "/api/schools", {"name": "S"})
    rooms = [(await call(c, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": n}))[1]["id"]
             for n in ("lead", "r1")]
    base = {"subject": "数学", "title": "Weekly", "lead_classroom_id": rooms[0], "remote_classroom_ids": [rooms[1]]}
    status, weekly = await call(c, key, "POST", "/api/lessons", {
        **base, "start": "2026-11-23T09:00:00+08:00", "end": "2026-11-23T09:45:00+08:00",
        "recurrence": {"until": "2026-12-21"}})
    assert status == 201 and weekly["recording"] is True  # the bureau's default
    status, _ = await call(c, key, "PUT", "/api/settings/recording", {"recording_default": False})
    assert status == 200
    status, once = await call(c, key, "POST", "/api/lessons", {
        **base, "title": "Once", "start": "2026-11-24T10:00:00+08:00", "end": "2026-11-24T10:45:00+08:00"})
    assert status == 201 and once["recording"] is False
    status, body = await call(c, key, "GET", "/api/settings/recording")
    assert body["recording_default"] is False and body["retention_days"] == 180.0

    record(data_dir, f"{weekly['id']}@2026-11-23", "Weekly", datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    record(data_dir, f"{weekly['id']}@2026-11-30", "Weekly", datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    record(data_dir, once["id"], "Once", datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    record(data_dir, "demo-lesson", "演示课 Demo lesson", datetime(2026, 11, 22, 2, 0, tzinfo=UTC))

    status, body = await call(c, key, "GET", "/api/recordings")
    assert status == 200 and len(body["recordings"]) == 4
    status, body = await call(c, key, "GET", f"/api/lessons/{weekly['id']}/recordings")
    assert [r["date"] for r in body["recordings"]] == ["2026-11-30", "2026-11-23"]
    assert body["recordings"][0]["occurrence_id"] == f"{weekly['id']}@2026-11-30"
    assert body["recordings"][0]["expires_at"] == "2027-05-29T01:45:00Z"  # 180 days after its end
    assert body["recordings"][0]["playback_url"].startswith("/playback.html?manifest=")
    status, body = await call(c, key, "GET", f"/api/lessons/{weekly['id']}/recordings?date=2026-11-23")
    assert [r["recording_id"] for r in body["recordings"]] == [f"{weekly['id']}_2026-11-23"]
    status, body = await call(c, key, "GET", f"/api/lessons/{once['id']}/recordings")
    assert body["recordings"][0]["date"] == "2026-11-24" and body["recordings"][0]["schedule_lesson_id"] == once["id"]
    status, body = await call(c, key, "GET", "/api/lessons/demo-lesson/recordings")
    assert status == 200 and body["recordings"][0]["schedule_lesson_id"] is None
    status, body = await call(c, key, "GET", f"/api/lessons/{weekly['id']}/recordings?date=not-a-date")
    assert status == 400
    status, body = await call(c, key, "GET", "/api/recordings?x=1")
    assert status == 400

    # another bureau sees the demo lesson's recording, not this bureau's lessons'
    other = store.create_bureau("County B")
    _, other_key = store.create_admin(other.id, "b-admin")
    status, body = await call(c, other_key, "GET", "/api/recordings")
    assert [r["lesson_id"] for r in body["recordings"]] == ["demo-lesson"]
    status, _ = await call(c, other_key, "GET", f"/api/lessons/{weekly['id']}/recordings")
    assert status == 404
    status, body = await call(c, other_key, "GET", "/api/settings/recording")
    assert body["recording_default"] is True  # its own default, untouched
