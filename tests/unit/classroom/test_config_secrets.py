"""media.turn_secret_file: the TURN secret read from a (0600) file, never from a command line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from classroom.config import ConfigError, load_config


def test_turn_secret_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "turn_secret"
    f.write_text("s3cret-from-file\n", encoding="utf-8")
    f.chmod(0o600)
    config = load_config(env={"CLASSROOM_MEDIA_TURN_SECRET_FILE": str(f)})
    assert config.media.turn_secret == "s3cret-from-file"


def test_turn_secret_file_in_yaml_wins_over_the_env_secret(tmp_path: Path) -> None:
    f = tmp_path / "turn_secret"
    f.write_text("from-file", encoding="utf-8")
    f.chmod(0o600)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"media:\n  turn_secret_file: {f}\n", encoding="utf-8")
    assert load_config(cfg, env={"CLASSROOM_MEDIA_TURN_SECRET": "env"}).media.turn_secret == "from-file"


def test_missing_or_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="media.turn_secret_file: cannot read"):
        load_config(env={"CLASSROOM_MEDIA_TURN_SECRET_FILE": str(tmp_path / "nope")})
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(env={"CLASSROOM_MEDIA_TURN_SECRET_FILE": str(empty)})


def test_world_readable_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "turn_secret"
    f.write_text("x", encoding="utf-8")
    f.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="classroom.config"):
        assert load_config(env={"CLASSROOM_MEDIA_TURN_SECRET_FILE": str(f)}).media.turn_secret == "x"
    assert "readable by other users" in caplog.text
