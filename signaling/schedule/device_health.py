"""Health reports of room hardware (``POST /api/device/health``, sent by ``classroom agent``):
validated into a dataclass and kept in memory per device (the bureau page's "last seen"; a
restarted server knows a device again at its next report, a few seconds later)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from signaling.schedule.errors import bad_request

FIELDS = {
    "version", "uptime_s", "state", "lesson_id",
    "frames_sent_video", "frames_sent_audio", "frames_received_video", "frames_received_audio",
    "cpu_percent", "rtt_ms", "loss",
}
COUNTERS = ("frames_sent_video", "frames_sent_audio", "frames_received_video", "frames_received_audio")
ONLINE_S = 30.0  # a device that reported within this is online
MAX_COUNT = 2**53


@dataclass(frozen=True)
class DeviceHealth:
    version: str
    uptime_s: float
    state: str = ""
    lesson_id: str | None = None
    frames_sent_video: int = 0
    frames_sent_audio: int = 0
    frames_received_video: int = 0
    frames_received_audio: int = 0
    cpu_percent: float | None = None  # the agent process's CPU, % of one core
    rtt_ms: float | None = None  # its downlink as the SFU sees it (the protocol's ``link`` message)
    loss: float | None = None  # 0..1


def _short_text(body: dict[str, Any], key: str, max_len: int, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len or not value.isprintable():
        raise bad_request("invalid_field", f"{key} must be printable text of 1..{max_len} characters",
                          field=key, reason="required" if value is None else "text")
    return value


def parse_health(body: dict[str, Any]) -> DeviceHealth:
    """A report's fields; ``400 invalid_field`` naming the first bad one."""
    extra = sorted(set(body) - FIELDS)
    if extra:
        raise bad_request("invalid_field", f"unknown field(s): {', '.join(map(str, extra))}",
                          field=str(extra[0])[:64], reason="unknown")
    version = _short_text(body, "version", 64, True)
    uptime = body.get("uptime_s")
    if isinstance(uptime, bool) or not isinstance(uptime, int | float) or not math.isfinite(uptime) or uptime < 0:
        raise bad_request("invalid_field", "uptime_s must be a number >= 0", field="uptime_s", reason="number")
    counts: dict[str, int] = {}
    for key in COUNTERS:
        value = body.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise bad_request("invalid_field", f"{key} must be an integer >= 0", field=key, reason="integer")
        counts[key] = value
    measures: dict[str, float | None] = {}
    for key, top in (("cpu_percent", 100_000.0), ("rtt_ms", 3_600_000.0), ("loss", 1.0)):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value) or not 0 <= value <= top):
            raise bad_request("invalid_field", f"{key} must be a number in 0..{top:g} or null", field=key,
                              reason="number")
        measures[key] = None if value is None else float(value)
    return DeviceHealth(
        version=str(version), uptime_s=float(uptime), state=_short_text(body, "state", 32, False) or "",
        lesson_id=_short_text(body, "lesson_id", 200, False), frames_sent_video=counts["frames_sent_video"],
        frames_sent_audio=counts["frames_sent_audio"], frames_received_video=counts["frames_received_video"],
        frames_received_audio=counts["frames_received_audio"], cpu_percent=measures["cpu_percent"],
        rtt_ms=measures["rtt_ms"], loss=measures["loss"],
    )


class HealthBoard:
    """The latest report of each device and when it came (in memory)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._latest: dict[str, tuple[float, DeviceHealth]] = {}

    def report(self, device_id: str, health: DeviceHealth) -> float:
        now = self.clock()
        self._latest[device_id] = (now, health)
        return now

    def view(self, device_id: str) -> tuple[float | None, bool, dict[str, Any] | None]:
        """(last seen, online, the latest report as JSON) of a device."""
        seen = self._latest.get(device_id)
        if seen is None:
            return None, False, None
        at, health = seen
        return at, self.clock() - at <= ONLINE_S, asdict(health)
