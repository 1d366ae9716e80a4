"""Recording catalogue and access: listing, signed expiring URLs, HTTP routes.

Layout: ``<data_dir>/recordings/<lesson_id>/manifest.json`` plus the track files it names.

Access is by URL signature only: ``HMAC-SHA256(secret, "<path>\\n<exp>")`` (base64url), valid
until the Unix time ``exp``. Whoever may watch a recording (the bureau's administrators, the
lesson's classrooms' teachers) is decided where the signed manifest URL is handed out — that
check is *not* in this module (see docs/recording.md, "What is left"). The served manifest has
every track/segment ``file`` replaced by a signed URL with the same expiry, so a page holding a
signed manifest URL can fetch the media, and nothing else.

Routes (:func:`setup_recording_routes`):
- ``GET /api/recordings/{lesson_id}/manifest?exp=..&sig=..`` → the manifest JSON, files signed;
- ``GET /recordings/{lesson_id}/{file}?exp=..&sig=..`` → the file, with HTTP range support.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from recorder.core import safe_name
from recorder.manifest import ManifestError, read_manifest

LESSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_TTL = 3600
PRIVATE_EVENT_TYPES = frozenset({"observation_note"})  # left out of the manifest a playback link serves
CONTENT_TYPES = {
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mp4": "video/mp4",
    ".json": "application/json",
}


log = logging.getLogger(__name__)

class SignatureError(PermissionError):
    pass


@dataclass(frozen=True)
class RecordingSummary:
    lesson_id: str
    title: str
    started_at: str
    duration_ms: int
    complete: bool
    tracks: int
    classrooms: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "lesson_id": self.lesson_id,
            "title": self.title,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "complete": self.complete,
            "tracks": self.tracks,
            "classrooms": self.classrooms,
        }


def recordings_root(data_dir: Path) -> Path:
    return data_dir / "recordings"


def recording_dir(data_dir: Path, lesson_id: str) -> Path:
    if not LESSON_ID.match(lesson_id) or ".." in lesson_id:
        raise ValueError(f"bad lesson id {lesson_id!r}")
    return recordings_root(data_dir) / lesson_id


def list_recordings(data_dir: Path, lesson_id: str | None = None) -> list[RecordingSummary]:
    """Recordings with a readable manifest, newest first (optionally only one lesson's)."""
    root = recordings_root(data_dir)
    if not root.is_dir():
        return []
    out: list[RecordingSummary] = []
    for directory in sorted(root.iterdir()):
        if not directory.is_dir() or not LESSON_ID.match(directory.name):
            continue
        if lesson_id is not None and directory.name not in (lesson_id, safe_name(lesson_id)):
            continue
        try:
            manifest = read_manifest(directory / "manifest.json")
        except ManifestError:
            continue
        raw = manifest.to_json()
        out.append(
            RecordingSummary(
                lesson_id=directory.name,
                title=manifest.title,
                started_at=str(raw["started_at"]),
                duration_ms=manifest.duration_ms,
                complete=manifest.complete,
                tracks=len(manifest.tracks),
                classrooms=[c.id for c in manifest.classrooms],
            )
        )
    out.sort(key=lambda r: r.started_at, reverse=True)
    return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class UrlSigner:
    """HMAC-signed, expiring URLs for recording paths."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the URL signing secret must be at least 16 bytes")
        self._secret = secret

    def signature(self, path: str, exp: int) -> str:
        message = f"{path}\n{exp}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def sign(self, path: str, ttl: float = DEFAULT_TTL, now: float | None = None) -> str:
        """``path?exp=..&sig=..`` valid for ``ttl`` seconds (``path`` unquoted, absolute)."""
        exp = int((time.time() if now is None else now) + ttl)
        return self.sign_until(path, exp)

    def sign_until(self, path: str, exp: int) -> str:
        return f"{quote(path)}?exp={exp}&sig={self.signature(path, exp)}"

    def verify(self, path: str, exp: str | None, sig: str | None, now: float | None = None) -> int:
        """Return the expiry of a valid signature; raise :class:`SignatureError` otherwise."""
        if not exp or not sig:
            raise SignatureError("missing exp or sig")
        try:
            expires = int(exp)
        except ValueError as exc:
            raise SignatureError("bad exp") from exc
        if not hmac.compare_digest(self.signature(path, expires), sig):
            raise SignatureError("bad signature")
        if (time.time() if now is None else now) > expires:
            raise SignatureError("the link has expired")
        return expires


def manifest_path(lesson_id: str) -> str:
    return f"/api/recordings/{lesson_id}/manifest"


def file_path(lesson_id: str, file: str) -> str:
    return f"/recordings/{lesson_id}/{file}"


def signed_manifest_url(signer: UrlSigner, lesson_id: str, ttl: float = DEFAULT_TTL, now: float | None = None) -> str:
    """What an authorised user gets to open ``/playback.html?manifest=<this>``."""
    return signer.sign(manifest_path(lesson_id), ttl, now)


def signed_manifest(raw: dict[str, Any], signer: UrlSigner, lesson_id: str, exp: int) -> dict:
    """A copy of a manifest whose track and segment files are signed URLs expiring at ``exp``."""
    out = json.loads(json.dumps(raw))
    for track in out.get("tracks", []):
        track["file"] = signer.sign_until(file_path(lesson_id, track["file"]), exp)
        for segment in track.get("segments", []):
            segment["file"] = signer.sign_until(file_path(lesson_id, segment["file"]), exp)
    return out


def _forbidden(message: str) -> web.Response:
    return web.json_response({"error": "forbidden", "message": message}, status=403)


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": "not_found", "message": message}, status=404)


def setup_recording_routes(app: web.Application, data_dir: Path, secret: bytes) -> UrlSigner:
    """Add the recording routes to ``app``; returns the signer that makes valid URLs."""
    signer = UrlSigner(secret)

    async def get_manifest(request: web.Request) -> web.StreamResponse:
        lesson_id = request.match_info["lesson_id"]
        try:
            exp = signer.verify(request.path, request.query.get("exp"), request.query.get("sig"))
        except SignatureError as exc:
            return _forbidden(str(exc))
        try:
            directory = recording_dir(data_dir, lesson_id)
        except ValueError:
            return _not_found("no such recording")
        path = directory / "manifest.json"
        if not path.is_file():
            return _not_found("no such recording")
        try:
            manifest = read_manifest(path)
        except ManifestError as exc:  # a damaged file on this server's disk: say so, and log it
            log.warning("recording %s: its manifest cannot be read: %s", lesson_id, exc)
            return web.json_response({"error": "bad_manifest", "message": str(exc)}, status=500)
        raw = manifest.to_json()
        # observation notes are for the lesson's observers, bureau and teacher only: they read
        # them from the notes API (docs/observation.md), never from a playback link
        raw["events"] = [e for e in raw["events"] if e.get("type") not in PRIVATE_EVENT_TYPES]
        body = signed_manifest(raw, signer, lesson_id, exp)
        if (directory / "report" / "report.html").is_file():
            # the classroom-behaviour analysis of this lesson, for the playback page to link
            body["report_url"] = signer.sign_until(file_path(lesson_id, "report/report.html"), exp)
        return web.json_response(body, headers={"Cache-Control": "private, no-store"})

    async def get_file(request: web.Request) -> web.StreamResponse:
        lesson_id = request.match_info["lesson_id"]
        name = request.match_info["file"]
        try:
            signer.verify(request.path, request.query.get("exp"), request.query.get("sig"))
        except SignatureError as exc:
            return _forbidden(str(exc))
        try:
            directory = recording_dir(data_dir, lesson_id).resolve()
        except ValueError:
            return _not_found("no such recording")
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in name:
            return _not_found("no such file")
        path = (directory / name).resolve()
        if directory not in path.parents or not path.is_file():
            return _not_found("no such file")
        headers = {"Cache-Control": "private, max-age=3600"}
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type:
            headers["Content-Type"] = content_type
        return web.FileResponse(path, headers=headers)

    app.router.add_get("/api/recordings/{lesson_id}/manifest", get_manifest)
    app.router.add_get("/recordings/{lesson_id}/{file:.+}", get_file)
    return signer
