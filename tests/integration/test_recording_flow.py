"""Recording wired into the server: a lesson with recording on gets a recorder process when its
first classroom joins; when the classrooms are gone the recording is finished and analysed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from classroom.server import Server, start_server
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


@pytest.fixture
async def recording_server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_server(server_config(tmp_path, recording=True))
    try:
        yield srv
    finally:
        await srv.stop()


async def test_lesson_is_recorded_and_analysed(recording_server: Server) -> None:
    srv = recording_server
    lead = ClassroomPeer(srv.base_url, srv.signer.issue("rec-1", "lead", "lead", "Lead"))
    remote = ClassroomPeer(srv.base_url, srv.signer.issue("rec-1", "r1", "remote", "Remote 1"))
    await lead.connect()
    await remote.connect()
    await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
    await remote.wait_frames("video", 5)
    await remote.send({"type": "raise_hand"})
    await asyncio.sleep(4)
    await lead.close()
    await remote.close()
    directory = srv.config.data_path / "recordings" / "rec-1"
    report = directory / "report" / "report.json"
    for _ in range(300):
        if (directory / "report" / "report.html").exists():  # written after report.json
            break
        await asyncio.sleep(0.1)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["format"] == "classroom-recording/1"
    kinds = sorted((t["kind"], t["source"], t["classroom_id"]) for t in manifest["tracks"])
    assert ("audio", "teacher", "lead") in kinds and ("video", "teacher", "lead") in kinds
    assert any(e["type"] == "hand_raised" and e["classroom_id"] == "r1" for e in manifest["events"])
    assert report.exists(), "the analysis did not run after the lesson"
    assert json.loads(report.read_text())["lesson_id"] == "rec-1"
    # The playback page's manifest links the analysis report; both links are signed.
    from recorder.catalogue import signed_manifest_url

    service = srv.extras["recording"].service
    async with aiohttp.ClientSession() as http:
        r = await http.get(srv.base_url + signed_manifest_url(service.signer, "rec-1"))
        body = await r.json()
        assert r.status == 200 and body["report_url"]
        r = await http.get(srv.base_url + body["report_url"])
        assert r.status == 200 and "S-T" in await r.text()
        r = await http.get(srv.base_url + "/recordings/rec-1/report/report.html")
        assert r.status == 403
        # The lesson's classrooms open the recording with their own join link; others cannot.
        token = srv.signer.issue("rec-1", "r1", "remote", "Remote 1")
        r = await http.get(f"{srv.base_url}/api/recordings/rec-1/playback?token={token}", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"].startswith("/playback.html?manifest=")
        other = srv.signer.issue("another-lesson", "r9", "remote", "Remote 9")
        r = await http.get(f"{srv.base_url}/api/recordings/rec-1/playback?token={other}", allow_redirects=False)
        assert r.status == 403
        r = await http.get(f"{srv.base_url}/api/recordings/rec-1/playback?token=forged.token", allow_redirects=False)
        assert r.status == 401


async def test_recordings_api_requires_an_administrator(recording_server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{recording_server.base_url}/api/lessons/les_000000000000/recordings")
        assert r.status == 401
        r = await http.get(f"{recording_server.base_url}/api/lessons/les_000000000000/recordings",
                           headers={"Authorization": "Bearer nonsense"})
        assert r.status == 401
