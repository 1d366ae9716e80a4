"""Each bureau's recording default: are its new lessons recorded unless the form says no?

Kept in ``<data_dir>/recording-settings.json`` (0600, written atomically): ``{"bureaus":
{"<bureau id>": {"recording_default": true, "updated_at": <unix>}}}``. A bureau that never
changed it records (the default is on). A lesson's own ``recording`` field is the per-lesson
override: a new lesson without one takes its bureau's default when it is created.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

SETTINGS_FILE = "recording-settings.json"


@dataclass(frozen=True)
class BureauRecording:
    recording_default: bool = True
    updated_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"recording_default": self.recording_default, "updated_at": self.updated_at}


class RecordingPolicy:
    def __init__(self, path: Path, default: bool = True) -> None:
        self.path = path
        self.default = default
        self._lock = threading.Lock()
        self._bureaus: dict[str, BureauRecording] = self._load()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> RecordingPolicy:
        return cls(Path(data_dir) / SETTINGS_FILE)

    def _load(self) -> dict[str, BureauRecording]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # a damaged file: say so, keep the defaults
            log.error("recording settings %s unreadable (%s): every bureau records by default", self.path, exc)
            return {}
        out: dict[str, BureauRecording] = {}
        bureaus = raw.get("bureaus") if isinstance(raw, dict) else None
        for bureau_id, entry in (bureaus or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("recording_default"), bool):
                updated = entry.get("updated_at")
                out[str(bureau_id)] = BureauRecording(
                    entry["recording_default"], float(updated) if isinstance(updated, int | float) else None
                )
        return out

    def get(self, bureau_id: str) -> BureauRecording:
        with self._lock:
            return self._bureaus.get(bureau_id, BureauRecording(self.default))

    def recording_default(self, bureau_id: str) -> bool:
        return self.get(bureau_id).recording_default

    def set(self, bureau_id: str, recording_default: bool) -> BureauRecording:
        entry = BureauRecording(recording_default, time.time())
        with self._lock:
            self._bureaus[bureau_id] = entry
            data = {"bureaus": {b: e.to_json() for b, e in sorted(self._bureaus.items())}}
            self._write(json.dumps(data, indent=1).encode("utf-8"))
        log.info("bureau %s: new lessons %s by default", bureau_id,
                 "are recorded" if recording_default else "are not recorded")
        return entry

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".recording-settings.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


POLICY_KEY = web.AppKey("recording_policy", RecordingPolicy)


def apply_recording_default(request: web.Request, bureau_id: str, body: dict[str, Any]) -> None:
    """A lesson body without ``recording`` gets its bureau's default (the per-lesson override
    is the field itself); without a policy wired (tests of the bare API) nothing changes."""
    policy = request.app.get(POLICY_KEY)
    if policy is not None and "recording" not in body:
        body["recording"] = policy.recording_default(bureau_id)
