"""The term dashboard's API (issue #18 item 3) over 30 synthetic analysed lessons (tests/integration/
schedule/term.py): both planted patterns are in its numbers — one remote classroom never given the
floor, one teacher drifting from dialogue to lecture — and the access rules hold: a bureau sees only
its own lessons, a teacher (with a lead link of their lesson) only their own rows."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from signaling.schedule import ScheduleStore, setup_schedule
from signaling.schedule.analytics_api import setup_analytics_api
from signaling.tokens import TokenSigner

from .conftest import MONDAY_7AM, PUBLIC_URL, FakeClock, FakeLive
from .term import DIMENSIONS, WEEKS, Term, build_term

SECRET = b"a" * 32


@dataclass
class Dash:
    client: TestClient[Any, Any]
    store: ScheduleStore
    signer: TokenSigner
    term: Term
    data: Path

    async def get(self, path: str, key: str | None = None, **params: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key or self.term.key}"} if "token" not in params else {}
        resp = await self.client.get(path, params=params, headers=headers)
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.read()

    def lead_token(self, teacher: str) -> str:
        occ = self.term.tokens_lesson[teacher]
        lead = {"wang": "lead-a", "li": "lead-b", "zhang": "lead-c"}[teacher]
        return self.signer.issue(occ, self.term.classrooms[lead], "lead", "lead")


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    store = ScheduleStore.open(tmp_path / "schedule.sqlite3", clock=FakeClock(MONDAY_7AM))
    key = store.ensure_bootstrap_admin()
    assert key is not None
    term = build_term(store, tmp_path, key)
    signer = TokenSigner(SECRET)
    app = web.Application()
    setup_schedule(app, store, signer, FakeLive(), PUBLIC_URL)
    setup_analytics_api(app, store, signer, FakeLive(), tmp_path / "recordings")
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Dash(client, store, signer, term, tmp_path)
    finally:
        await client.close()
        store.close()


def _teacher(summary: dict[str, Any], teacher_id: str) -> dict[str, Any]:
    return next(t for t in summary["teachers"] if t["teacher_id"] == teacher_id)


async def test_the_planted_patterns_are_in_the_numbers(dash: Dash) -> None:
    status, s = await dash.get("/api/analytics/summary")
    assert status == 200, s
    assert s["lessons"] == 30 == dash.term.occurrences
    assert s["unreadable_reports"] == 0
    assert sum(s["modes"].values()) == 30
    t = dash.term

    # one remote classroom never given the floor: first in the fairness view, flagged, 0 s heard
    rooms = s["remote_classrooms"]
    assert len(rooms) == 6
    never = rooms[0]
    assert never["classroom_id"] == t.never_floored
    assert never["lessons"] == WEEKS and never["lessons_with_floor"] == 0 and never["floor_grants"] == 0
    assert never["floor_share"] == 0.0 and never["heard_s"] == 0.0 and never["never_heard_lessons"] == WEEKS
    assert never["rarely_heard"] is True
    others = rooms[1:]
    assert all(r["floor_share"] >= 0.5 and not r["rarely_heard"] and r["heard_s"] > 60 for r in others), others
    assert [r["classroom_id"] for r in rooms if r["rarely_heard"]] == [t.never_floored]

    # one teacher drifting from dialogue to lecture: modes, Rt up, Ch down over the term
    li = _teacher(s, t.teachers["li"])
    assert li["lessons"] == WEEKS
    series = li["series"]
    assert [p["date"] for p in series] == sorted(p["date"] for p in series)
    assert all(p["mode"] == "dialogue" for p in series[:4]), series
    assert all(p["mode"] == "lecture" for p in series[-4:]), series
    early, late = series[:3], series[-3:]
    assert max(p["rt"] for p in early) + 0.2 < min(p["rt"] for p in late)
    assert min(p["ch"] for p in early) > max(p["ch"] for p in late) + 0.15
    assert li["rt_trend_30d"] > 0.1 and li["ch_trend_30d"] < -0.1
    assert li["modes"]["lecture"] >= 4 and li["modes"]["dialogue"] >= 4
    # the steady teachers do not drift
    wang, zhang = _teacher(s, t.teachers["wang"]), _teacher(s, t.teachers["zhang"])
    assert wang["modes"]["dialogue"] == WEEKS and abs(wang["rt_trend_30d"]) < 0.1
    assert abs(zhang["rt_trend_30d"]) < 0.1 and zhang["modes"]["lecture"] == 0
    assert li["teacher_share"] > wang["teacher_share"]

    # per school: the lead schools' lessons, the rural schools' remote classrooms
    schools = {x["school_id"]: x for x in s["schools"]}
    assert schools[t.schools["chengguan"]]["lessons"] == 20 and schools[t.schools["shiyan"]]["lessons"] == 10
    assert schools[t.schools["hexi"]]["remote_lessons"] == 30 and schools[t.schools["hexi"]]["lessons"] == 0
    # observation scores per dimension over time
    dims = {d["dimension"]: d for d in s["scores"]}
    assert set(dims) <= set(DIMENSIONS) and len(dims) >= 3
    assert all(1 <= d["mean"] <= 5 and d["count"] == sum(p["count"] for p in d["series"]) for d in dims.values())


async def test_filters_lessons_csv_and_charts(dash: Dash) -> None:
    t = dash.term
    status, s = await dash.get("/api/analytics/summary", teacher_id=t.teachers["li"], **{"from": "2026-10-01"})
    assert status == 200 and s["lessons"] == 6 and len(s["teachers"]) == 1
    status, s = await dash.get("/api/analytics/summary", subject="科学")
    assert s["lessons"] == 10 and s["teachers"][0]["teacher_id"] == t.teachers["zhang"]
    status, s = await dash.get("/api/analytics/summary", school_id=t.schools["shanqu"])
    assert s["lessons"] == 20  # 王老师 and 张老师 teach to 山区小学 classrooms, 李老师 does not
    status, s = await dash.get("/api/analytics/summary", school_id=t.schools["shiyan"], to="2026-09-30")
    assert s["lessons"] == 4
    status, body = await dash.get("/api/analytics/lessons", teacher_id=t.teachers["zhang"])
    assert status == 200 and len(body["lessons"]) == WEEKS
    row = body["lessons"][0]
    assert row["subject"] == "科学" and row["teacher_name"] == "张老师" and row["school_name"] == "实验小学"
    r6 = next(r for r in row["remote_classrooms"] if r["classroom_id"] == t.never_floored)
    assert r6["had_floor"] is False and r6["name"] == "石门村小" and r6["school_name"] == "河西小学"

    for view in ("lessons", "remote_classrooms", "teachers", "schools"):
        resp = await dash.client.get("/api/analytics/export.csv", params={"view": view},
                                     headers={"Authorization": f"Bearer {t.key}"})
        assert resp.status == 200 and resp.content_type == "text/csv"
        text = (await resp.read()).decode("utf-8")
        assert text.startswith("\ufeff")
        table = list(csv.DictReader(io.StringIO(text[1:])))
        assert len(table) == {"lessons": 30, "remote_classrooms": 6, "teachers": 3, "schools": 4}[view]
    resp = await dash.client.get("/api/analytics/export.csv", params={"view": "remote_classrooms"},
                                 headers={"Authorization": f"Bearer {t.key}"})
    first = next(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8")[1:])))
    assert first["name"] == "石门村小" and first["lessons_with_floor"] == "0" and first["rarely_heard"] == "1"

    for chart in ("rt_ch", "modes", "fairness", "scores"):
        resp = await dash.client.get(f"/api/analytics/charts/{chart}", headers={"Authorization": f"Bearer {t.key}"})
        assert resp.status == 200 and resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")


async def test_bad_input_is_a_clear_error(dash: Dash) -> None:
    cases = [
        ({"from": "2026-13-01"}, 400, "invalid_time"),
        ({"from": "2026-10-01", "to": "2026-09-01"}, 400, "invalid_time"),
        ({"teacher_id": "x" * 80}, 400, "invalid_field"),
        ({"school_id": "sch_nope"}, 404, "not_found"),
        ({"teacher_id": "tch_nope"}, 404, "not_found"),
        ({"colour": "red"}, 400, "invalid_field"),
        ({"subject": "x" * 300}, 400, "invalid_field"),
    ]
    for params, status, code in cases:
        got, body = await dash.get("/api/analytics/summary", **params)
        assert (got, body["error"]["code"]) == (status, code), (params, body)
    got, body = await dash.get("/api/analytics/export.csv", view="everything")
    assert (got, body["error"]["code"]) == (400, "invalid_field")
    got, body = await dash.get("/api/analytics/charts/pie")
    assert (got, body["error"]["code"]) == (404, "not_found")
    resp = await dash.client.get("/api/analytics/summary")
    assert resp.status == 401

    # a broken report is left out (logged and counted), the rest still answer
    broken = next((dash.data / "recordings").iterdir()) / "report" / "report.json"
    broken.write_text("{not json")
    got, s = await dash.get("/api/analytics/summary")
    assert got == 200 and s["lessons"] == 29 and s["unreadable_reports"] == 1


async def test_a_teacher_sees_only_their_own_rows(dash: Dash) -> None:
    t = dash.term
    token = dash.lead_token("li")
    status, s = await dash.get("/api/analytics/summary", token=token)
    assert status == 200, s
    assert s["lessons"] == WEEKS and [x["teacher_id"] for x in s["teachers"]] == [t.teachers["li"]]
    status, body = await dash.get("/api/analytics/lessons", token=token)
    assert {row["teacher_id"] for row in body["lessons"]} == {t.teachers["li"]}
    resp = await dash.client.get("/api/analytics/summary", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200 and (await resp.json())["lessons"] == WEEKS  # the token in the header works too
    resp = await dash.client.get("/api/analytics/export.csv", params={"token": token, "view": "lessons"})
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8")[1:])))
    assert len(rows) == WEEKS and {r["teacher_id"] for r in rows} == {t.teachers["li"]}

    # asking for another teacher's rows is refused, on every endpoint
    for path in ("/api/analytics/summary", "/api/analytics/lessons", "/api/analytics/export.csv",
                 "/api/analytics/charts/rt_ch"):
        status, body = await dash.get(path, token=token, teacher_id=t.teachers["wang"])
        assert (status, body["error"]["code"]) == (403, "forbidden"), (path, body)
    # a remote classroom's or an observer's link is not a teacher's
    for role, room in (("remote", t.classrooms["r3"]), ("observer", "observer")):
        other = dash.signer.issue(t.tokens_lesson["li"], room, role, role)
        status, body = await dash.get("/api/analytics/summary", token=other)
        assert (status, body["error"]["code"]) == (403, "forbidden")
    # a forged or foreign link
    foreign = TokenSigner(b"b" * 32).issue(t.tokens_lesson["li"], t.classrooms["lead-b"], "lead", "lead")
    status, body = await dash.get("/api/analytics/summary", token=foreign)
    assert (status, body["error"]["code"]) == (401, "token_invalid")


async def test_another_bureau_sees_none_of_these_lessons(dash: Dash) -> None:
    other = dash.store.create_bureau("另一个县 Another county")
    _, key = dash.store.create_admin(other.id, "other")
    status, s = await dash.get("/api/analytics/summary", key=key)
    assert status == 200 and s["lessons"] == 0 and s["teachers"] == [] and s["remote_classrooms"] == []
    status, body = await dash.get("/api/analytics/summary", key=key, teacher_id=dash.term.teachers["li"])
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_reports_are_reread_when_they_change(dash: Dash) -> None:
    status, s = await dash.get("/api/analytics/summary")
    assert status == 200 and s["lessons"] == 30
    directories = sorted((dash.data / "recordings").iterdir())
    path = directories[0] / "report" / "report.json"
    report = json.loads(path.read_text())
    report["st"]["mode"] = "practice"
    path.write_text(json.dumps(report))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    status, s = await dash.get("/api/analytics/summary")
    assert s["lessons"] == 30 and s["modes"]["practice"] == 1  # the changed report, read again
    shutil.rmtree(directories[1])  # a deleted recording (retention) leaves the dashboard
    status, s = await dash.get("/api/analytics/summary")
    assert s["lessons"] == 29
