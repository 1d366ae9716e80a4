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
