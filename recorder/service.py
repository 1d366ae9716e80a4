"""One object for ``classroom serve`` to wire recording in: routes, signed links, recorders.

from recorder.service import setup_recording
recording = setup_recording(app, config.data_path, ws_url=f"ws://127.0.0.1:{port}/ws",
                            segment_seconds=config.recording.segment_seconds)
recording.lesson_started(lesson_id, credentials)  # () -> RecorderCredentials, one per launch
url = recording.playback_url(lesson_id)   # only after checking who asks (see docs/recording.md)
await recording.stop_all()                # on shutdown
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from recorder.catalogue import RecordingSummary, UrlSigner, list_recordings, setup_recording_routes, signed_manifest_url
from recorder.launcher import CredentialSource, RecorderLauncher

SECRET_FILE = "recording_secret"


def load_secret(data_dir: Path, env_secret: str | None = None) -> bytes:
    """The URL-signing secret: ``env_secret``, else ``<data_dir>/recording_secret`` (created 0600)."""
    if env_secret:
        return env_secret.encode("utf-8")
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode("ascii")
    # Written whole to a private temporary file, then linked into place: of several node
    # processes starting on one fresh data dir (a cluster), one secret wins and all read it.
    fd, tmp = tempfile.mkstemp(prefix=".recording_secret.", dir=data_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        os.unlink(tmp)
    return secret


@dataclass
class RecordingService:
    data_dir: Path
    signer: UrlSigner
    launcher: RecorderLauncher

    def lesson_started(self, lesson_id: str, credentials: CredentialSource | str) -> None:
        """Start and supervise the lesson's recorder process (no-op when it runs already);
        ``credentials()`` gives a fresh token for each launch (restarts included)."""
        self.launcher.start(lesson_id, credentials)

    async def lesson_ended(self, lesson_id: str) -> None:
        await self.launcher.stop(lesson_id)

    async def stop_all(self) -> None:
        await self.launcher.stop_all()

    def recordings(self, lesson_id: str | None = None) -> list[RecordingSummary]:
        return list_recordings(self.data_dir, lesson_id)

    def manifest_url(self, lesson_id: str, ttl: float = 3600) -> str:
        return signed_manifest_url(self.signer, lesson_id, ttl)

    def playback_url(self, lesson_id: str, ttl: float = 3600) -> str:
        """``/playback.html?manifest=...`` — hand out only to authorised users."""
        return "/playback.html?manifest=" + quote(self.manifest_url(lesson_id, ttl), safe="")


def setup_recording(
    app: web.Application,
    data_dir: Path,
    ws_url: str,
    segment_seconds: float = 2.0,
    env_secret: str | None = None,
    log_level: str = "WARNING",
    standby: bool = False,
) -> RecordingService:
    secret = load_secret(
        data_dir, env_secret if env_secret is not None else os.environ.get("CLASSROOM_RECORDING_SECRET")
    )
    signer = setup_recording_routes(app, data_dir, secret)
    launcher = RecorderLauncher(ws_url, data_dir, segment_seconds, log_level=log_level, standby=standby)
    return RecordingService(data_dir, signer, launcher)
