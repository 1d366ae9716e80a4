"""The agent's device credential never comes from the command line (agent/config.py, agent/cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import build_config
from agent.config import DeviceKeyError, load_key

KEY = "ckd_dev_0123456789ab.s3cr3t-Secret_x"


def key_file(tmp_path: Path, mode: int, text: str = KEY + "\n") -> Path:
    p = tmp_path / "device.key"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_a_0600_file_or_the_environment(tmp_path: Path) -> None:
    assert load_key(str(key_file(tmp_path, 0o600)), {}) == KEY
    assert load_key(None, {"CLASSROOM_DEVICE_KEY": KEY}) == KEY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(DeviceKeyError, match="chmod 600"):
        load_key(str(key_file(tmp_path, mode)), {})


def test_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(DeviceKeyError, match="no device credential"):
        load_key(None, {})
    with pytest.raises(DeviceKeyError, match="cannot read"):
        load_key(str(tmp_path / "nope"), {})
    with pytest.raises(DeviceKeyError, match="ckd_"):
        load_key(str(key_file(tmp_path, 0o600, "cka_admin.key")), {})


def test_device_key_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_config(["--server", "http://127.0.0.1:1", "--device-key", KEY, "--test-source"],
                     {"CLASSROOM_DEVICE_KEY": KEY})
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--device-key is refused" in err and "--device-key-file" in err and KEY not in err


def test_a_command_line(tmp_path: Path) -> None:
    cfg = build_config(["--server", "http://127.0.0.1:1", "--device-key-file", str(key_file(tmp_path, 0o600)),
                        "--lead-time", "30", "--test-source", "--no-display"], {})
    assert cfg.device_key == KEY and cfg.lead_time_s == 30 and cfg.sources.test_source and not cfg.display
    with pytest.raises(SystemExit):
        build_config(["--server", "http://127.0.0.1:1", "--device-key-file", str(key_file(tmp_path, 0o600))], {})


def test_sound_follows_the_display_unless_turned_off(tmp_path: Path) -> None:
    base = ["--server", "http://127.0.0.1:1", "--device-key-file", str(key_file(tmp_path, 0o600)), "--test-source"]
    cfg = build_config(base, {})
    assert cfg.display and cfg.sound and cfg.speaker_device == "default"
    assert not build_config([*base, "--no-display"], {}).sound  # --no-display: count only, no sound either
    cfg = build_config([*base, "--no-sound", "--speaker", "hw:0,3"], {})
    assert cfg.display and not cfg.sound
    assert build_config([*base, "--speaker", "hw:0,3"], {}).speaker_device == "hw:0,3"
