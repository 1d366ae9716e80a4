"""classroom/observation.py: where a lesson's media timeline begins, read from the recording's
manifest (its head, or the whole file when the head does not hold it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from classroom.observation import RecordingNotes
from recorder.catalogue import UrlSigner
from recorder.manifest import Manifest, write_manifest
from sfu.node import MediaNode
from sfu.peer import PeerSettings
from signaling.router import LocalRouter


def notes(tmp_path: Path) -> RecordingNotes:
    return RecordingNotes(tmp_path, LocalRouter(MediaNode(PeerSettings())), UrlSigner(b"0123456789abcdef0123"))


def test_origin_from_the_manifest(tmp_path: Path) -> None:
    started = datetime(2026, 12, 2, 8, 0, 0, 250_000, tzinfo=UTC)
    rec = notes(tmp_path)
    assert rec.origin_ms("les_0123456789ab@2026-12-02") is None  # no recording
    for title in ("数学", "长" * 5000):  # a title longer than the head that is read
        write_manifest(tmp_path / "recordings" / "les_0123456789ab_2026-12-02" / "manifest.json",
                       Manifest("les_0123456789ab@2026-12-02", title, started))
        assert rec.origin_ms("les_0123456789ab@2026-12-02") == round(started.timestamp() * 1000)
    (tmp_path / "recordings" / "les_0123456789ab_2026-12-02" / "manifest.json").write_text("{broken")
    assert rec.origin_ms("les_0123456789ab@2026-12-02") is None
    assert rec.observation_url("les_0123456789ab@2026-12-02") is None  # not analysed
