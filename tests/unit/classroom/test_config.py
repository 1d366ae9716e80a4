"""classroom/config.py: defaults, YAML file, CLASSROOM_<SECTION>_<FIELD> environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from classroom.config import Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "classroom.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    c = load_config(env={})
    assert isinstance(c, Config)
    assert c.server.host == "127.0.0.1"
    assert c.server.port == 8080
    assert c.server.max_message_bytes == 64 * 1024
    assert c.server.demo_lesson is True
    assert c.media.ice_addresses == ["127.0.0.1"]
    assert c.media.packet_cache_size == 1024
    assert c.recording.enabled is True  # recording policy: on by default (docs/recording.md)
    assert c.recording.demo_lesson is True and c.recording.every_lesson is False
    assert c.recording.retention_days == 180.0
    assert c.recording.min_free_bytes == 2 * 1024**3 and c.recording.min_free_percent == 5.0
    assert c.redis.url == ""
    assert c.data_path == Path("./data")


def test_defaults_are_not_shared_between_instances() -> None:
    a = load_config(env={})
    a.media.ice_addresses.append("10.0.0.1")
    assert load_config(env={}).media.ice_addresses == ["127.0.0.1"]


def test_no_path_and_empty_env_ignore_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLASSROOM_SERVER_PORT", "9999")
    assert load_config(env={}).server.port == 8080
    assert load_config().server.port == 9999  # env=None: os.environ


def test_yaml_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
server:
  host: 0.0.0.0
  port: 9001
  demo_lesson: false
media:
  ice_addresses: [10.0.0.5, "::1"]
  keyframe_request_interval_s: 0.5
recording:
  enabled: false
  retention_days: 0
""",
    )
    c = load_config(path, env={})
    assert c.server.host == "0.0.0.0"
    assert c.server.port == 9001
    assert c.server.demo_lesson is False
    assert c.server.data_dir == "./data"  # untouched default
    assert c.media.ice_addresses == ["10.0.0.5", "::1"]
    assert c.media.keyframe_request_interval_s == 0.5
    assert c.recording.enabled is False
    assert c.recording.retention_days == 0.0


def test_yaml_string_values_are_coerced(tmp_path: Path) -> None:
    text = 'server:\n  port: "9002"\n  demo_lesson: "no"\nmedia:\n  ice_addresses: "a, b"\n'
    path = write(tmp_path, text)
    c = load_config(path, env={})
    assert c.server.port == 9002
    assert c.server.demo_lesson is False
    assert c.media.ice_addresses == ["a", "b"]


def test_empty_yaml_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}).server.port == 8080


def test_path_accepts_str(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 1234\n")
    assert load_config(str(path), env={}).server.port == 1234


@pytest.mark.parametrize(
    "text",
    [
        "serverr:\n  port: 1\n",
        "server:\n  prot: 1\n",
        "media:\n  ice_address: [a]\n",
        "data_path: x\n",
    ],
)
def test_unknown_keys_are_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), env={})


def test_section_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "server: 8080\n"), env={})


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), env={})


def test_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "server: [unclosed\n"), env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.yaml", env={})


# --- environment ----------------------------------------------------------------------


def test_env_port() -> None:
    c = load_config(env={"CLASSROOM_SERVER_PORT": "9000"})
    assert c.server.port == 9000
    assert isinstance(c.server.port, int)


def test_env_field_with_underscores() -> None:
    c = load_config(
        env={
            "CLASSROOM_SERVER_DATA_DIR": "/var/lib/classroom",
            "CLASSROOM_SERVER_MAX_MESSAGE_BYTES": "1024",
            "CLASSROOM_MEDIA_REMB_BITRATE": "1000000",
        }
    )
    assert c.server.data_dir == "/var/lib/classroom"
    assert c.data_path == Path("/var/lib/classroom")
    assert c.server.max_message_bytes == 1024
    assert c.media.remb_bitrate == 1_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True),
     ("0", False), ("false", False), ("No", False), ("off", False)],
)  # fmt: skip
def test_env_bool(value: str, expected: bool) -> None:
    env = {"CLASSROOM_SERVER_DEMO_LESSON": value, "CLASSROOM_RECORDING_ENABLED": value}
    c = load_config(env=env)
    assert c.server.demo_lesson is expected
    assert c.recording.enabled is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", "truee"])
def test_env_bad_bool(value: str) -> None:
    with pytest.raises(ConfigError):
        load_config(env={"CLASSROOM_RECORDING_ENABLED": value})


def test_env_list() -> None:
    c = load_config(env={"CLASSROOM_MEDIA_ICE_ADDRESSES": "10.0.0.1, 192.168.1.2 ,,::1"})
    assert c.media.ice_addresses == ["10.0.0.1", "192.168.1.2", "::1"]


def test_env_empty_list() -> None:
    assert load_config(env={"CLASSROOM_MEDIA_ICE_ADDRESSES": ""}).media.ice_addresses == []


def test_env_float() -> None:
    env = {"CLASSROOM_RECORDING_SEGMENT_SECONDS": "4", "CLASSROOM_ANALYTICS_INTERVAL_S": "2.5"}
    c = load_config(env=env)
    assert c.recording.segment_seconds == 4.0
    assert isinstance(c.recording.segment_seconds, float)
    assert c.analytics.interval_s == 2.5


def test_env_string() -> None:
    c = load_config(env={"CLASSROOM_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert c.redis.url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    "env", [{"CLASSROOM_SERVER_PORT": "eighty"}, {"CLASSROOM_MEDIA_REMB_BITRATE": "1.5"},
            {"CLASSROOM_ANALYTICS_INTERVAL_S": "fast"}]
)  # fmt: skip
def test_env_bad_numbers(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_config(env=env)


def test_env_unrelated_and_unknown_names_are_ignored() -> None:
    c = load_config(
        env={
            "PATH": "/usr/bin",
            "CLASSROOM_TOKEN_SECRET": "not a config field",
            "CLASSROOM_SERVER": "x",
            "CLASSROOM_NOPE_PORT": "1",
            "CLASSROOM_SERVER_NOPE": "1",
            "CLASSROOM_DATA_PATH": "x",
        }
    )
    assert c == Config()


def test_env_wins_over_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 7000\n  host: 10.1.1.1\n")
    c = load_config(path, env={"CLASSROOM_SERVER_PORT": "9000"})
    assert c.server.port == 9000
    assert c.server.host == "10.1.1.1"


def test_wrong_types_in_yaml_are_config_errors(tmp_path: Path) -> None:
    import pytest

    for body in ("server: {port: abc}\n", "server: {port: [1, 2]}\n", "media: {ice_addresses: 5}\n"):
        path = tmp_path / "c.yaml"
        path.write_text(body)
        with pytest.raises(ConfigError):
            load_config(path, env={})
