"""signaling/schedule/recording_policy.py: each bureau's recording default, kept in the data dir."""

from __future__ import annotations

import json
from pathlib import Path

from signaling.schedule.recording_policy import SETTINGS_FILE, RecordingPolicy


def test_default_is_on_and_a_change_persists_privately(tmp_path: Path) -> None:
    policy = RecordingPolicy.in_data_dir(tmp_path)
    assert policy.recording_default("bur_1") is True
    policy.set("bur_1", False)
    assert policy.recording_default("bur_1") is False and policy.recording_default("bur_2") is True
    path = tmp_path / SETTINGS_FILE
    assert path.stat().st_mode & 0o077 == 0
    assert RecordingPolicy.in_data_dir(tmp_path).recording_default("bur_1") is False


def test_a_damaged_file_falls_back_to_the_default(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text("{oops")
    assert RecordingPolicy.in_data_dir(tmp_path).recording_default("bur_1") is True
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"bureaus": {"bur_1": {"recording_default": "no"}}}))
    assert RecordingPolicy.in_data_dir(tmp_path).recording_default("bur_1") is True
