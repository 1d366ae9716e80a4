from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recorder.manifest import (
    ClassroomEntry,
    EventEntry,
    Manifest,
    ManifestError,
    SegmentEntry,
    TrackEntry,
    read_manifest,
    write_manifest,
)
from recorder.writer import opus_packet_ms


def sample() -> Manifest:
    m = Manifest("L1", "语文", datetime(2026, 11, 25, 8, 0, 0, 123000, tzinfo=UTC), 61000)
    m.classrooms = [ClassroomEntry("lead", "lead", "城关"), ClassroomEntry("r1", "remote", "山村")]
    m.tracks = [
        TrackEntry(
            "cam",
            "cam.webm",
            "video",
            "vp8",
            "lead",
            "teacher",
            10,
            60000,
            [SegmentEntry("segments/cam/00000.webm", 10, 2010)],
            True,
        )
    ]
    m.events = [EventEntry(0, "join", "lead"), EventEntry(500, "spotlight", None, {"by": "lead"})]
    return m


def test_roundtrip_and_wire_shape(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_manifest(path, sample())
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["format"] == "classroom-recording/1"
    assert raw["started_at"] == "2026-11-25T08:00:00.123Z"
    assert raw["events"][1] == {"t_ms": 500, "type": "spotlight", "classroom_id": None, "by": "lead"}
    assert raw["tracks"][0]["segments"][0]["file"] == "segments/cam/00000.webm"
    again = read_manifest(path)
    assert again.to_json() == sample().to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"format": "other/1"}, "format"),
        ({"started_at": 5}, "started_at"),
        (
            {
                "tracks": [
                    {
                        "id": "a",
                        "file": "../x.webm",
                        "kind": "video",
                        "codec": "vp8",
                        "classroom_id": "c",
                        "source": "teacher",
                        "start_ms": 0,
                        "end_ms": 1,
                    }
                ]
            },
            "unsafe",
        ),
        (
            {
                "tracks": [
                    {
                        "id": "a",
                        "file": "a.webm",
                        "kind": "smell",
                        "codec": "vp8",
                        "classroom_id": "c",
                        "source": "teacher",
                        "start_ms": 0,
                        "end_ms": 1,
                    }
                ]
            },
            "kind",
        ),
        ({"events": [{"type": "join"}]}, "t_ms"),
        ({"events": [{"type": "join", "t_ms": float("inf")}]}, "bad or missing field"),  # JSON's Infinity
        ({"classrooms": "x"}, "list"),
    ],
)
def test_bad_manifests_are_rejected_clearly(patch: dict, message: str) -> None:
    raw = sample().to_json()
    raw.update(patch)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(raw)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"format": "classroom-rec')
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(path)


@pytest.mark.parametrize(
    "packet,ms",
    [
        (bytes([0xFC, 0, 0]), 20.0),
        (bytes([0x78]), 20.0),
        (bytes([0x7B, 0x03]), 60.0),
        (bytes([0xF9]), 40.0),
        (b"", 20.0),
    ],
)
def test_opus_packet_duration(packet: bytes, ms: float) -> None:
    assert opus_packet_ms(packet) == ms
