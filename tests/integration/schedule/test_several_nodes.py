"""One schedule database, several nodes: on SQLite (one file, several processes on one machine)
and on PostgreSQL (a real server). Each node has its own connection; writes are serialised across
them, migrations run once, and a lost PostgreSQL gives a clear 503, not a crash."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from signaling.schedule import ScheduleStore
from signaling.schedule.database import DatabaseUnavailable
from signaling.schedule.errors import ApiError
from signaling.schedule.models import LessonSpec
from signaling.schedule.store import MIGRATIONS
from tests.postgres_server import PostgresServer

from .conftest import CST, MONDAY_7AM, FakeClock, StoreTarget

ROOT = Path(__file__).resolve().parents[3]


def _district(store: ScheduleStore) -> tuple[str, list[str]]:
    bureau = store.create_bureau("County")
    school = store.create_school(bureau.id, "School")
    rooms = [store.create_classroom(bureau.id, school.id, f"Room {n}", "browser").id for n in range(3)]
    return bureau.id, rooms


def test_two_nodes_see_each_others_writes(store_target: StoreTarget) -> None:
    a = store_target.open()
    b = store_target.open(close_stale_joins=False)
    try:
        bureau, rooms = _district(a)
        assert {c.id for c in b.list_classrooms(bureau)} == set(rooms)
        lesson = b.create_lesson(bureau, LessonSpec(
            subject="数学", title="Fractions", lead_classroom_id=rooms[0], lead_teacher_id=None,
            remote_classroom_ids=(rooms[1],), start=MONDAY_7AM + 7200, end=MONDAY_7AM + 9900,
        ))
        got = a.get_lesson(bureau, lesson.id)
        assert got is not None and got.remote_classroom_ids == (rooms[1],) and got.start == MONDAY_7AM + 7200
    finally:
        a.close()
        b.close()


def _book_at_once(nodes: list[ScheduleStore], bureau: str, leads: list[str], remote: str, start: float) -> list[str]:
    """Each node books its lead classroom with the same remote classroom at the same moment."""
    results: list[str] = []
    barrier = threading.Barrier(len(nodes))

    def book(store: ScheduleStore, lead: str) -> None:
        spec = LessonSpec(subject="s", title=lead, lead_classroom_id=lead, lead_teacher_id=None,
                          remote_classroom_ids=(remote,), start=start, end=start + 2700)
        barrier.wait()
        try:
            store.create_lesson(bureau, spec)
            results.append("ok")
        except ApiError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=book, args=(node, lead)) for node, lead in zip(nodes, leads, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(results)


def test_concurrent_bookings_of_one_classroom_one_wins(store_target: StoreTarget) -> None:
    """Two nodes book the same classroom at the same time, 8 times over: exactly one booking
    of each pair is accepted, the other gets 409 conflict (the check and the insert are one
    serialised transaction on both backends)."""
    first = store_target.open()
    nodes = [first, store_target.open(close_stale_joins=False)]
    try:
        bureau, rooms = _district(first)
        monday = datetime(2026, 11, 23, 9, tzinfo=CST)
        for slot in range(8):
            start = (monday + timedelta(days=slot)).timestamp()
            assert _book_at_once(nodes, bureau, rooms[:2], rooms[2], start) == ["conflict", "ok"], slot
        assert len(first.list_lessons(bureau)) == 8
    finally:
        for node in nodes:
            node.close()


def test_nodes_starting_together_migrate_once(store_target: StoreTarget) -> None:
    stores: list[ScheduleStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        barrier.wait()
        try:
            stores.append(store_target.open(close_stale_joins=False))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] and len(stores) == 3
        assert {s.schema_version for s in stores} == {len(MIGRATIONS)}
    finally:
        for s in stores:
            s.close()


WRITER = """
import sys
from signaling.schedule import ScheduleStore
store = ScheduleStore.open(sys.argv[1], close_stale_joins=False)
bureau = store.bureau_by_name("County")
for n in range(int(sys.argv[3])):
    store.create_school(bureau.id, f"{sys.argv[2]}-{n}")
store.close()
"""


def test_node_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    """Several node processes on one machine write the same WAL file at once: nothing is lost,
    nobody gets 'database is locked'."""
    path = tmp_path / "schedule.sqlite3"
    store = ScheduleStore.open(path)
    bureau = store.create_bureau("County")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"node{i}", "40"], cwd=ROOT,
                         stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    try:
        assert len(store.list_schools(bureau.id)) == 120
        assert store._q("PRAGMA journal_mode")[0][0] == "wal"
    finally:
        store.close()


# ----------------------------------------------------------------------------- PostgreSQL only
@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database(f"nodes{time.monotonic_ns()}")


def test_password_from_pgpassfile(postgres: PostgresServer, pg_url: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No password anywhere in our settings: libpq's PGPASSFILE (0600) supplies it."""
    passfile = tmp_path / "pgpass"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"127.0.0.1:{postgres.port}:*:classroom:{postgres.password}\n".encode())
    os.close(fd)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    store = ScheduleStore.open(pg_url)
    try:
        assert store.database.dialect == "postgresql" and store.schema_version == len(MIGRATIONS)
    finally:
        store.close()


def test_a_wrong_password_is_a_clear_error_without_the_password(postgres: PostgresServer, pg_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(DatabaseUnavailable) as info:
        ScheduleStore.open(pg_url, password="not-the-password-xyz")
    assert info.value.status == 503 and info.value.code == "database_unavailable"
    assert "password authentication failed" in caplog.text
    assert "not-the-password-xyz" not in caplog.text


def test_no_server_there_fails_fast(postgres: PostgresServer) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        ScheduleStore.open(f"postgresql://classroom@127.0.0.1:{_closed_port()}/x", password="x")
    assert time.monotonic() - started < 5


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_lost_connection_is_a_503_then_comes_back(postgres: PostgresServer, pg_url: str) -> None:
    store = ScheduleStore.open(pg_url, clock=FakeClock(MONDAY_7AM), password=postgres.password)
    try:
        bureau = store.create_bureau("County")
        with psycopg.connect(pg_url, password=postgres.password, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert killed
        with pytest.raises(DatabaseUnavailable):
            store.list_bureaus()
        assert store.database.failures == 1
        # a background thread opens a new connection (not the caller: it may be the event loop)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert [b.id for b in store.list_bureaus()] == [bureau.id]
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline, "no reconnect"
                time.sleep(0.05)
        store.create_school(bureau.id, "after the reconnect")
    finally:
        store.close()


def test_a_slow_statement_is_cut_short(postgres: PostgresServer, pg_url: str) -> None:
    """statement_timeout bounds how long a call can hold the event loop."""
    store = ScheduleStore.open(pg_url, password=postgres.password)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            store._q("SELECT pg_sleep(10)")
        assert time.monotonic() - started < 4
        assert store.list_bureaus() == []  # the connection is still good
    finally:
        store.close()
