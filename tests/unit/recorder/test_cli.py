from __future__ import annotations

from pathlib import Path

import pytest

from recorder.cli import composite_main, record_main
from recorder.udp import UdpTrack


def test_record_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert record_main([]) == 2
    assert "--url and --token" in capsys.readouterr().err


def test_record_bad_udp_track(capsys: pytest.CaptureFixture[str]) -> None:
    assert record_main(["--udp-track", "a,b", "--lesson-id", "x"]) == 2
    assert "ID,KIND,CODEC" in capsys.readouterr().err
    with pytest.raises(ValueError, match="kind"):
        UdpTrack.parse("cam,sound,vp8,lead,teacher,5000")
    assert UdpTrack.parse("cam,video,VP8,lead,teacher,5000").codec == "vp8"


def test_record_unreachable_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sfu.glue

    # the worker makes aiortc's codec factories raise for the whole process: not in pytest
    monkeypatch.setattr(sfu.glue, "forbid_codecs", lambda: None)
    code = record_main(
        [
            "--url",
            "ws://127.0.0.1:9/ws",
            "--token",
            "t",
            "--out",
            str(tmp_path / "r"),
            "--log-level",
            "ERROR",
        ]
    )
    assert code == 1


def test_composite_missing_dir(tmp_path: Path) -> None:
    assert composite_main([str(tmp_path), "--quiet"]) == 1
