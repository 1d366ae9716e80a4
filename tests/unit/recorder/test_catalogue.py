from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from recorder.catalogue import (
    SignatureError,
    UrlSigner,
    list_recordings,
    setup_recording_routes,
    signed_manifest_url,
)
from recorder.manifest import Manifest, SegmentEntry, TrackEntry, write_manifest

SECRET = b"0123456789abcdef-secret"


def make_recording(data_dir: Path, lesson_id: str = "L1") -> Path:
    directory = data_dir / "recordings" / lesson_id
    (directory / "segments" / "cam").mkdir(parents=True)
    (directory / "cam.webm").write_bytes(bytes(range(256)) * 40)
    (directory / "segments" / "cam" / "00000.webm").write_bytes(b"seg")
    manifest = Manifest(lesson_id, "数学", datetime(2026, 11, 25, 8, 0, tzinfo=UTC), 5000)
    manifest.tracks.append(
        TrackEntry(
            "cam",
            "cam.webm",
            "video",
            "vp8",
            "lead",
            "teacher",
            0,
            5000,
            [SegmentEntry("segments/cam/00000.webm", 0, 2000)],
            True,
        )
    )
    manifest.complete = True
    write_manifest(directory / "manifest.json", manifest)
    return directory


def test_signer_roundtrip_expiry_and_tamper() -> None:
    signer = UrlSigner(SECRET)
    url = signer.sign("/recordings/L1/cam.webm", ttl=60, now=1000)
    path, query = url.split("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert signer.verify(path, params["exp"], params["sig"], now=1030) == 1060
    for bad in (
        lambda: signer.verify(path, params["exp"], params["sig"], now=1061),
        lambda: signer.verify("/recordings/L1/other.webm", params["exp"], params["sig"], now=1),
        lambda: signer.verify(path, "9999999999", params["sig"], now=1),
        lambda: signer.verify(path, None, None),
        lambda: UrlSigner(b"other-secret-0123456").verify(path, params["exp"], params["sig"], 1),
    ):
        try:
            bad()
        except SignatureError:
            continue
        raise AssertionError("accepted a bad signature")


def test_list_recordings(tmp_path: Path) -> None:
    assert list_recordings(tmp_path) == []
    make_recording(tmp_path, "L1")
    (tmp_path / "recordings" / "broken").mkdir()
    (tmp_path / "recordings" / "broken" / "manifest.json").write_text("{")
    (summary,) = list_recordings(tmp_path)
    assert summary.lesson_id == "L1" and summary.tracks == 1 and summary.complete
    assert list_recordings(tmp_path, "nope") == []


async def test_routes_signed_manifest_files_and_ranges(tmp_path: Path) -> None:
    make_recording(tmp_path)
    app = web.Application()
    signer = setup_recording_routes(app, tmp_path, SECRET)
    async with TestClient(TestServer(app)) as client:
        url = signed_manifest_url(signer, "L1", ttl=60)
        resp = await client.get(url)
        assert resp.status == 200
        body = await resp.json()
        track = body["tracks"][0]
        assert track["file"].startswith("/recordings/L1/cam.webm?exp=")
        assert body["tracks"][0]["segments"][0]["file"].startswith("/recordings/L1/segments/cam/00000.webm?exp=")
        resp = await client.get(track["file"], headers={"Range": "bytes=10-19"})
        assert resp.status == 206
        assert await resp.read() == bytes(range(10, 20))
        assert resp.headers["Content-Type"] == "video/webm"
        resp = await client.get(track["file"])
        assert resp.status == 200 and len(await resp.read()) == 256 * 40
        seg = await client.get(body["tracks"][0]["segments"][0]["file"])
        assert await seg.read() == b"seg"
        # unsigned, tampered, expired, other lesson, traversal
        assert (await client.get("/recordings/L1/cam.webm")).status == 403
        assert (await client.get(track["file"].replace("sig=", "sig=x"))).status == 403
        expired = signer.sign("/recordings/L1/cam.webm", ttl=-1)
        assert (await client.get(expired)).status == 403
        assert (await client.get(signer.sign("/api/recordings/L2/manifest"))).status == 404
        assert (await client.get(signer.sign("/recordings/L1/../../secret"))).status in (403, 404)
        assert (await client.get(signer.sign("/recordings/L1/missing.webm"))).status == 404
