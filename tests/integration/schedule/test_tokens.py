"""Join tokens of the schedule: window, forgery, wrong lesson, wrong role, admission."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from signaling.tokens import TokenClaims, TokenError, TokenSigner

from .conftest import CST, Env


async def lesson_and_links(env: Env, **over: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    status, lesson = await env.call("POST", "/api/lessons", env.lesson_body(**over))
    assert status == 201, lesson
    params = {"date": over["date"]} if "date" in over else None
    status, links = await env.call("GET", f"/api/lessons/{lesson['id']}/links", params=params)
    assert status == 200, links
    return lesson, links


def at(env: Env, hour: int, minute: int = 0, day: int = 23) -> float:
    env.clock.set(datetime(2026, 11, day, hour, minute, tzinfo=CST))
    return env.clock.now


def join(env: Env, token: str) -> TokenClaims:
    """What the signaling does on ``join``: verify, then ask the schedule."""
    claims = env.signer.verify(token, now=env.clock.now)
    env.store.admit(claims)
    return claims


def token_of(links: dict[str, Any], role: str, index: int = 0) -> str:
    return [x["token"] for x in links["links"] if x["role"] == role][index]


async def test_window_15_minutes_before_to_30_after(env: Env) -> None:
    _, links = await lesson_and_links(env)
    lead = token_of(links, "lead")
    at(env, 8, 44)
    with pytest.raises(TokenError) as exc:
        join(env, lead)
    assert exc.value.code == "token_not_yet_valid"
    at(env, 8, 45)
    assert join(env, lead).role == "lead"
    at(env, 10, 15)
    join(env, lead)
    at(env, 10, 16)
    with pytest.raises(TokenError) as exc:
        join(env, lead)
    assert exc.value.code == "token_expired"


async def test_forged_and_foreign_tokens(env: Env) -> None:
    _, links = await lesson_and_links(env)
    at(env, 9)
    remote = token_of(links, "remote")
    payload, sig = remote.split(".")
    # a remote classroom promoting itself to lead by editing the claims
    claims = env.signer.verify(remote, now=env.clock.now).to_json()
    claims["role"] = "lead"
    import base64
    import json

    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    # one signature character changed (in the middle: the last one carries padding bits)
    flipped = sig[:10] + ("B" if sig[10] != "B" else "C") + sig[11:]
    for bad in (forged_payload + "." + sig, payload + "." + flipped):
        with pytest.raises(TokenError) as exc:
            join(env, bad)
        assert exc.value.code == "token_invalid"
    other = TokenSigner(b"another secret of 32 bytes......")
    with pytest.raises(TokenError) as exc:
        env.signer.verify(other.issue(links["lesson_id"], "x", "lead"), now=env.clock.now)
    assert exc.value.code == "token_invalid"
    for junk in ("", "abc", "a.b.c", None, 5):
        with pytest.raises(TokenError):
            join(env, junk)  # type: ignore[arg-type]


async def test_wrong_lesson(env: Env) -> None:
    a, links_a = await lesson_and_links(env)
    b, links_b = await lesson_and_links(
        env,
        lead_classroom_id=env.ids["lead2"],
        lead_teacher_id=env.ids["teacher2"],
        remote_classroom_ids=[env.ids["r3"]],
    )
    at(env, 9)
    # a token signed for lesson B's id but naming a classroom of lesson A only
    t = env.signer.issue(b["id"], env.ids["r1"], "remote", not_before=0, expires=4e9)
    with pytest.raises(TokenError) as exc:
        join(env, t)
    assert exc.value.code == "lesson_unavailable" and "not a remote classroom" in str(exc.value)
    # unknown lesson id in the schedule's form
    t = env.signer.issue("les_ffffffffffff", env.ids["r1"], "remote", not_before=0, expires=4e9)
    with pytest.raises(TokenError) as exc:
        join(env, t)
    assert exc.value.code == "lesson_unavailable"
    # both real tokens are fine in their own lessons
    assert join(env, token_of(links_a, "remote")).lesson_id == a["id"]
    assert join(env, token_of(links_b, "remote")).lesson_id == b["id"]


async def test_wrong_role(env: Env) -> None:
    lesson, links = await lesson_and_links(env)
    at(env, 9)
    as_lead = env.signer.issue(lesson["id"], env.ids["r1"], "lead", not_before=0, expires=4e9)
    with pytest.raises(TokenError) as exc:
        join(env, as_lead)
    assert exc.value.code == "lesson_unavailable" and "lead classroom" in str(exc.value)
    as_remote = env.signer.issue(lesson["id"], env.ids["lead"], "remote", not_before=0, expires=4e9)
    with pytest.raises(TokenError):
        join(env, as_remote)
    claims = join(env, token_of(links, "observer"))
    assert claims.role == "observer"
    assert join(env, token_of(links, "remote", 1)).role == "remote"


async def test_cancelled_and_ended_lessons_refuse(env: Env) -> None:
    lesson, links = await lesson_and_links(env)
    lead = token_of(links, "lead")
    at(env, 9)
    join(env, lead)
    env.store.on_joined(lesson["id"], env.ids["lead"])
    at(env, 9, 50)
    env.store.on_left(lesson["id"], env.ids["lead"])
    with pytest.raises(TokenError) as exc:
        join(env, lead)  # still inside the token's window, but the lesson has ended
    assert exc.value.code == "lesson_unavailable" and "ended" in str(exc.value)

    other, links2 = await lesson_and_links(env, start="2026-11-23T11:00:00+08:00", end="2026-11-23T11:45:00+08:00")
    await env.call("POST", f"/api/lessons/{other['id']}/cancel")
    at(env, 11)
    with pytest.raises(TokenError) as exc:
        join(env, token_of(links2, "remote"))
    assert exc.value.code == "lesson_unavailable" and "cancelled" in str(exc.value)


async def test_recurring_tokens_are_per_occurrence(env: Env) -> None:
    status, weekly = await env.call("POST", "/api/lessons", env.lesson_body(recurrence={"until": "2026-12-21"}))
    lid = weekly["id"]
    status, links = await env.call("GET", f"/api/lessons/{lid}/links", params={"date": "2026-11-30"})
    token = token_of(links, "remote")
    at(env, 9, 0, day=30)
    assert join(env, token).lesson_id == f"{lid}@2026-11-30"
    # a token for a week then cancelled is refused
    await env.call("POST", f"/api/lessons/{lid}/cancel", {"date": "2026-12-07"})
    t = env.signer.issue(f"{lid}@2026-12-07", env.ids["r1"], "remote", not_before=0, expires=4e9)
    env.clock.set(datetime(2026, 12, 7, 9, tzinfo=CST))
    with pytest.raises(TokenError) as exc:
        join(env, t)
    assert exc.value.code == "lesson_unavailable"
    # the plain lesson id of a recurring lesson is not an occurrence
    t = env.signer.issue(lid, env.ids["r1"], "remote", not_before=0, expires=4e9)
    with pytest.raises(TokenError):
        join(env, t)


async def test_moved_lesson_refuses_old_tokens(env: Env) -> None:
    lesson, links = await lesson_and_links(env)
    old = token_of(links, "remote")
    status, _ = await env.call(
        "PATCH",
        f"/api/lessons/{lesson['id']}",
        {"start": "2026-11-23T15:00:00+08:00", "end": "2026-11-23T15:45:00+08:00"},
    )
    assert status == 200
    at(env, 9)
    with pytest.raises(TokenError) as exc:
        join(env, old)
    assert exc.value.code == "lesson_unavailable"


async def test_tokens_not_from_the_schedule_are_admitted(env: Env) -> None:
    t = env.signer.issue("demo-lesson", "demo-lead", "lead", not_before=0, expires=4e9)
    assert join(env, t).lesson_id == "demo-lesson"
    env.store.on_joined("demo-lesson", "demo-lead")  # ignored, no error
    env.store.on_left("demo-lesson", "demo-lead")
