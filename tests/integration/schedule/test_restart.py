"""Restart mid-week: lessons, token validity, lifecycle and join history survive."""

from __future__ import annotations

from datetime import datetime

from signaling.schedule import ScheduleStore
from signaling.schedule.store import MIGRATIONS
from signaling.tokens import TokenSigner

from .conftest import CST, Env, start_client


async def test_restart_keeps_everything(env: Env) -> None:
    data_dir = env.where.data_dir
    signer = TokenSigner.from_data_dir(data_dir)
    _, weekly = await env.call("POST", "/api/lessons", env.lesson_body(recurrence={"until": "2026-12-21"}))
    lid = weekly["id"]
    _, links_before = await env.call("GET", f"/api/lessons/{lid}/links", params={"date": "2026-11-30"})
    token = signer.issue(
        f"{lid}@2026-11-30",
        env.ids["r1"],
        "remote",
        not_before=datetime(2026, 11, 30, 8, 45, tzinfo=CST).timestamp(),
        expires=datetime(2026, 11, 30, 10, 15, tzinfo=CST).timestamp(),
    )
    # Monday's lesson happened; Tuesday the server restarts while a classroom is connected
    env.clock.set(datetime(2026, 11, 23, 9, tzinfo=CST))
    monday = f"{lid}@2026-11-23"
    env.store.on_joined(monday, env.ids["lead"])
    env.store.on_joined(monday, env.ids["r1"])
    env.store.on_joined(lid, env.ids["r1"])  # not an occurrence of a weekly lesson: ignored
    env.clock.set(datetime(2026, 11, 23, 9, 50, tzinfo=CST))
    env.store.on_left(monday, env.ids["r1"])
    env.store.on_left(monday, env.ids["lead"])
    env.clock.set(datetime(2026, 11, 24, 10, tzinfo=CST))
    env.store.on_joined("les_0123456789ab", "ghost")  # unknown: ignored
    _, week_before = await env.call("GET", "/api/schedule/week")
    _, live_before = await env.call("GET", f"/api/lessons/{lid}/live", params={"date": "2026-11-23"})
    await env.client.close()
    env.store.close()

    store = env.reopen()
    assert store.schema_version == len(MIGRATIONS)
    env.store = store
    env.client = await start_client(store, env.signer, env.live)
    try:
        assert store.ensure_bootstrap_admin() is None
        _, week_after = await env.call("GET", "/api/schedule/week")  # old key still works
        assert week_after == week_before
        _, live_after = await env.call("GET", f"/api/lessons/{lid}/live", params={"date": "2026-11-23"})
        assert live_after == live_before and live_after["status"] == "ended"
        assert len(live_after["history"]) == 2
        _, links_after = await env.call("GET", f"/api/lessons/{lid}/links", params={"date": "2026-11-30"})
        # same window, same tokens (observers get a fresh id per request)
        assert links_after["links"][:-1] == links_before["links"][:-1]
        assert links_after["not_before"] == links_before["not_before"]
        # next Monday the token issued before the restart admits its classroom
        env.clock.set(datetime(2026, 11, 30, 8, 50, tzinfo=CST))
        signer_again = TokenSigner.from_data_dir(data_dir)
        claims = signer_again.verify(token, now=env.clock.now)
        store.admit(claims)
        store.admit(env.signer.verify(links_after["links"][0]["token"], now=env.clock.now))
    finally:
        await env.client.close()
        store.close()
        env.store = env.reopen()  # for the fixture's close


async def test_open_connections_are_closed_on_restart(env: Env) -> None:
    _, lesson = await env.call("POST", "/api/lessons", env.lesson_body())
    env.clock.set(datetime(2026, 11, 23, 9, tzinfo=CST))
    env.store.on_joined(lesson["id"], env.ids["lead"])
    assert env.store.connected_from_history(lesson["id"]) == [env.ids["lead"]]
    env.store.close()
    env.store = env.reopen()
    assert env.store.connected_from_history(lesson["id"]) == []
    (event,) = env.store.history(lesson["id"])
    assert event.left_at is not None


def test_migrations_are_versioned(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "x.sqlite3"
    store = ScheduleStore.open(path)
    assert store.schema_version == len(MIGRATIONS) >= 1
    store.close()
    store = ScheduleStore.open(path)  # reopening migrates nothing twice
    assert store.schema_version == len(MIGRATIONS)
    mode = store._q("PRAGMA journal_mode")[0][0]
    assert mode == "wal"
    store.close()
