"""The agent's settings and its device credential (never from the command line)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from agent.sources import SourceSpec

KEY_ENV = "CLASSROOM_DEVICE_KEY"
_KEY = re.compile(r"^ckd_[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


class DeviceKeyError(ValueError):
    """The device credential is missing, malformed or readable by others."""


@dataclass
class AgentConfig:
    server: str
    device_key: str
    lead_time_s: float = 60.0
    poll_s: float = 30.0
    sources: SourceSpec = field(default_factory=SourceSpec)
    display: bool = False
    display_device: str = "/dev/fb0"  # a Linux framebuffer (agent/display.py)
    display_size: tuple[int, int] | None = None  # WxH when the device has no sysfs geometry
    sound: bool = False  # play the received sound (agent/speaker.py)
    speaker_device: str = "default"  # an ALSA playback device
    hand_port: int = 8765  # 0: no local hand-raise endpoint
    status_file: str | None = None
    log_interval_s: float = 5.0
    health_interval_s: float = 5.0  # POST /api/device/health this often; 0: never
    ice_addresses: list[str] = field(default_factory=list)


def check_key(key: str) -> str:
    key = key.strip()
    if not _KEY.match(key):
        raise DeviceKeyError("the device credential is not of the form ckd_<device id>.<secret>")
    return key


def load_key(path: str | None, env: dict[str, str] | None = None) -> str:
    """The credential from ``path`` (a file only its owner may read: mode 0600 or stricter) or,
    without a path, from ``CLASSROOM_DEVICE_KEY``."""
    env = dict(os.environ) if env is None else env
    if path:
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except OSError as exc:
            raise DeviceKeyError(f"cannot read the device key file {path}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise DeviceKeyError(f"the device key file {path} is not a regular file")
        if mode & 0o077:
            raise DeviceKeyError(f"the device key file {path} is readable by others (mode {stat.S_IMODE(mode):04o}); "
                            f"chmod 600 {path}")
        return check_key(p.read_text(encoding="utf-8", errors="replace"))
    if env.get(KEY_ENV):
        return check_key(env[KEY_ENV])
    raise DeviceKeyError(f"no device credential: give --device-key-file PATH (mode 0600) or set {KEY_ENV}")
