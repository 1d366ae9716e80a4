"""The schedule database's settings: config file / environment, the password from a file,
and no password on the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classroom.cli import _serve
from classroom.config import ConfigError, load_config


def test_default_is_sqlite_in_the_data_dir() -> None:
    config = load_config(env={})
    assert config.database.url == "" and config.database.password == ""


def test_url_and_password_file_from_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "db_password"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"pa ss\n")
    os.close(fd)
    config = load_config(env={
        "CLASSROOM_DATABASE_URL": "postgresql://classroom@db:5432/schedule",
        "CLASSROOM_DATABASE_PASSWORD_FILE": str(secret),
    })
    assert config.database.url == "postgresql://classroom@db:5432/schedule"
    assert config.database.password == "pa ss"


def test_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  url: postgresql://classroom@db/schedule\n", encoding="utf-8")
    assert load_config(path, env={}).database.url == "postgresql://classroom@db/schedule"


def test_a_missing_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database.password_file"):
        load_config(env={"CLASSROOM_DATABASE_PASSWORD_FILE": str(tmp_path / "nope")})


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="postgresql://"):
        load_config(env={"CLASSROOM_DATABASE_URL": "mysql://u:pw@db/x"})


def test_no_password_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _serve(["--database", "postgresql://classroom:hunter22@db/schedule"]) == 2
    err = capsys.readouterr().err
    assert "password on the command line" in err and "hunter22" not in err
    assert _serve(["--database", "postgresql://classroom@db/schedule?password=hunter22"]) == 2
    assert _serve(["--database", "oracle://db"]) == 2
