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
    token = tmp_path / "token"
    token.write_text("t")
    token.chmod(0o600)
    code = record_main(
        [
            "--url",
            "ws://127.0.0.1:9/ws",
            "--token-file",
            str(token),
            "--out",
            str(tmp_path / "r"),
            "--log-level",
            "ERROR",
        ]
    )
    assert code == 1


def test_composite_missing_dir(tmp_path: Path) -> None:
    assert composite_main([str(tmp_path), "--quiet"]) == 1


def test_the_token_comes_from_a_pipe_or_a_private_file(tmp_path: Path) -> None:
    import os

    from recorder.cli import TokenSourceError, read_token

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"abc.def\n")
    os.close(write_fd)
    assert read_token(None, None, read_fd) == "abc.def"
    with pytest.raises(OSError):
        os.fstat(read_fd)  # closed after reading: nothing left to leak
    private = tmp_path / "token"
    private.write_text("tok.en\n")
    private.chmod(0o600)
    assert read_token(None, str(private), None) == "tok.en"
    private.chmod(0o644)
    with pytest.raises(TokenSourceError, match="readable by others"):
        read_token(None, str(private), None)
    with pytest.raises(TokenSourceError, match="only one"):
        read_token("x", str(private), None)
    with pytest.raises(TokenSourceError, match="token-fd 987"):
        read_token(None, None, 987)
    assert read_token(None, None, None) is None


def test_record_refuses_a_world_readable_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "token"
    path.write_text("t.t")
    path.chmod(0o644)
    assert record_main(["--url", "ws://127.0.0.1:1/ws", "--token-file", str(path)]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_a_token_on_the_command_line_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = record_main(["--url", "ws://127.0.0.1:9/ws", "--token", "secret-token", "--out", str(tmp_path / "r")])
    assert code != 0
    assert "--token-file" in capsys.readouterr().err
