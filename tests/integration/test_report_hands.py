"""The issue's lesson for real: a remote classroom raises its hand, the lead grants it the floor
a few seconds later; the server, its recorder process and the analysis run as in production.
The report must count the hand as answered (the server logs the grant's hand_lowered in the same
millisecond as floor_granted) and say which remote classroom was heard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from classroom.server import Server, start_server
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    config = server_config(tmp_path, recording=True)
    config.analytics.interval_s = 3.0
    server = await start_server(config)
    try:
        yield server
    finally:
        await server.stop()


async def floor_event(peer: ClassroomPeer, etype: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        msg = await peer.expect("floor", timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if (msg.get("event") or {}).get("type") == etype:
            return msg


async def recorder_joined(peer: ClassroomPeer, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        msg = await peer.expect("recording", timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if msg.get("active") is True:
            return


async def test_granted_hand_is_answered_in_the_report(srv: Server) -> None:
    lead = ClassroomPeer(srv.base_url, srv.signer.issue("hands-1", "lead", "lead", "Lead"))
    r1 = ClassroomPeer(srv.base_url, srv.signer.issue("hands-1", "r1", "remote", "远端一 Remote 1"))
    r2 = ClassroomPeer(srv.base_url, srv.signer.issue("hands-1", "r2", "remote", "远端二 Remote 2"))
    joined = await lead.connect()
    await r1.connect()
    await r2.connect()
    if not joined.get("recording"):
        await recorder_joined(lead)  # the hand must happen while the recorder listens
    await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
    await r1.publish([(ToneTrack(660.0), "students")])
    await r2.publish([(ToneTrack(880.0), "students")])  # recorded, but r2 never gets the floor
    await r1.wait_frames("video", 5)
    await asyncio.sleep(1.0)
    await r1.send({"type": "raise_hand"})
    await floor_event(lead, "hand_raised")
    await asyncio.sleep(2.5)
    await lead.send({"type": "grant_floor", "classroom_id": "r1"})
    lowered = await floor_event(lead, "hand_lowered")
    assert lowered["event"]["reason"] == "granted"
    await floor_event(lead, "floor_granted")
    await asyncio.sleep(4.0)
    await lead.close()
    await r1.close()
    await r2.close()

    directory = srv.config.data_path / "recordings" / "hands-1"
    for _ in range(900):
        if (directory / "report" / "report.html").exists():
            break
        await asyncio.sleep(0.1)
    assert (directory / "report" / "report.html").exists(), "the lesson was not analysed"
    manifest = json.loads((directory / "manifest.json").read_text())
    mine = [e for e in manifest["events"] if e["classroom_id"] == "r1"]
    low = next(e for e in mine if e["type"] == "hand_lowered")
    grant = next(e for e in mine if e["type"] == "floor_granted")
    assert low.get("reason") == "granted" and abs(low["t_ms"] - grant["t_ms"]) <= 50
    report = json.loads((directory / "report" / "report.json").read_text())
    part = report["participation"]["r1"]
    assert part["hand_raises"] == 1 and part["floor_grants"] == 1
    assert part["unanswered_hands"] == 0
    assert len(part["hand_wait_s"]) == 1 and 1.5 <= part["hand_wait_s"][0] <= 6.0, part
    assert part["audible_s"] > 2.0
    assert report["participation"]["r2"]["audible_s"] == 0
    assert "r2" in report["fairness"]["never_heard"]
    assert "r2" in report["fairness"]["never_granted_floor"]
    html = (directory / "report" / "report.html").read_text(encoding="utf-8")
    assert "Every remote classroom" not in html
    for name in ("st_curve", "rt_ch", "timeline", "participation", "st_codes"):
        assert (directory / "report" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (directory / "report" / f"{name}.svg").read_text(encoding="utf-8").startswith("<svg")
