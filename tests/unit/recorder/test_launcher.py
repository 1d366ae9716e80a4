"""What the launcher gives a recorder child: no secrets in its environment, readable exits."""

from __future__ import annotations

from recorder.launcher import RecorderLauncher, child_environment, describe_exit


def test_the_child_environment_has_no_secrets() -> None:
    env = child_environment({
        "PATH": "/usr/bin", "CLASSROOM_TOKEN_SECRET": "s", "CLASSROOM_RECORDING_SECRET": "s",
        "CLASSROOM_MEDIA_TURN_SECRET": "s", "AWS_ACCESS_KEY_ID": "k", "DB_PASSWORD": "p",
        "CLASSROOM_MEDIA_ICE_ADDRESSES": "10.0.0.1",
    })  # fmt: skip
    assert env == {"PATH": "/usr/bin", "CLASSROOM_MEDIA_ICE_ADDRESSES": "10.0.0.1", "PYTHONUNBUFFERED": "1"}


def test_exits_are_described() -> None:
    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(1) == "exit status 1"


def test_the_command_line_holds_no_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cmd = RecorderLauncher("ws://127.0.0.1:1/ws", tmp_path).command(7, tmp_path / "recordings" / "L")
    assert "--token" not in cmd and cmd[cmd.index("--token-fd") + 1] == "7"
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "recordings" / "L")


def test_the_standby_command_line_holds_no_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cmd = RecorderLauncher("ws://127.0.0.1:1/ws", tmp_path, log_level="INFO").standby_command()
    assert "--standby" in cmd and "--token" not in cmd and "--token-fd" not in cmd and "--out" not in cmd
    assert cmd[cmd.index("--log-level") + 1] == "INFO"


def test_a_standby_recorder_takes_its_job_from_one_line() -> None:
    import io

    from recorder.cli import wait_for_job

    assert wait_for_job(io.StringIO('{"token": "t", "out": "/r/L"}\n')) == ("t", "/r/L")
    assert wait_for_job(io.StringIO('{"token": "t"}\n')) == ("t", None)
    for nothing in ("", "\n", "not json\n", '{"out": "/r"}\n', "[1]\n"):
        assert wait_for_job(io.StringIO(nothing)) is None
