"""A cluster node's settings (``redis:``): the URL's scheme, the heartbeat below the TTL, the
password from a file or the environment, never on the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classroom.cli import _serve
from classroom.config import ConfigError, load_config


def test_defaults_are_one_node_without_redis() -> None:
    c = load_config(env={})
    assert c.redis.url == "" and c.redis.heartbeat_s == 1.0 and c.redis.ttl_s == 3.0 and c.redis.takes_lessons


def test_environment_and_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "redis_password"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("s3cret-redis\n")
    c = load_config(env={"CLASSROOM_REDIS_URL": "redis://10.0.0.5:6379/0", "CLASSROOM_REDIS_NODE_ID": "n7",
                         "CLASSROOM_REDIS_PASSWORD_FILE": str(secret), "CLASSROOM_REDIS_TAKES_LESSONS": "false"})
    assert (c.redis.url, c.redis.node_id, c.redis.password, c.redis.takes_lessons) == (
        "redis://10.0.0.5:6379/0", "n7", "s3cret-redis", False)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="redis://"):
        load_config(env={"CLASSROOM_REDIS_URL": "http://redis:6379"})
    with pytest.raises(ConfigError, match="heartbeat_s"):
        load_config(env={"CLASSROOM_REDIS_HEARTBEAT_S": "3", "CLASSROOM_REDIS_TTL_S": "3"})


def test_no_password_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _serve(["--redis", "redis://:hunter22@127.0.0.1:6379/0"]) == 2
    err = capsys.readouterr().err
    assert "password on the command line" in err and "hunter22" not in err
    assert _serve(["--redis", "memcached://127.0.0.1"]) == 2
