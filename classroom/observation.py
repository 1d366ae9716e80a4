"""Observation notes wired to the recordings (docs/observation.md): where a lesson's media
timeline begins (the recording's ``started_at``), a note added afterwards written into the
recording's manifest (through the live recorder while one runs, else into the finished manifest
file) and the report's observation section written again (``python -m analytics.observation``, a
process of its own), and the signed link to that section.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recorder.catalogue import UrlSigner, file_path, recordings_root
from recorder.core import safe_name
from recorder.manifest import parse_iso, write_atomic
from signaling.notes import Note
from signaling.protocol import server_message
from signaling.routing.base import Router

log = logging.getLogger(__name__)

_STARTED = re.compile(r'"started_at"\s*:\s*"([^"]{10,40})"')
HEAD_BYTES = 8192
OBSERVATION_PAGE = "report/observation.html"


class RecordingNotes:
    def __init__(self, data_dir: Path, router: Router, signer: UrlSigner,
                 recording_now: Callable[[str], bool] | None = None) -> None:
        self.root = recordings_root(data_dir)
        self.router = router
        self.signer = signer
        self._recording_now = recording_now or (lambda _lesson: False)
        self._locks: dict[str, asyncio.Lock] = {}
        self._rewriting: set[str] = set()
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def directory(self, lesson_id: str) -> Path:
        return self.root / safe_name(lesson_id)

    def origin_ms(self, lesson_id: str) -> int | None:
        """The recording's ``started_at`` in ms since the epoch, read from the head of its
        manifest (the recorder writes it first; the file may be large, the head is enough)."""
        path = self.directory(lesson_id) / "manifest.json"
        try:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES).decode("utf-8", "replace")
        except OSError:
            return None
        match = _STARTED.search(head)
        text = match.group(1) if match else None
        if text is None:  # an unusual manifest (a very long title): read it whole
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                text = raw.get("started_at") if isinstance(raw, dict) else None
            except (OSError, ValueError, RecursionError):
                return None
        try:
            return round(parse_iso(str(text)).timestamp() * 1000)
        except ValueError:
            return None

    def observation_url(self, lesson_id: str, ttl: float = 3600) -> str | None:
        name = safe_name(lesson_id)
        if not (self.root / name / OBSERVATION_PAGE).is_file():
            return None
        return self.signer.sign(file_path(name, OBSERVATION_PAGE), ttl)

    async def add_to_recording(self, note: Note) -> None:
        room = self.router.rooms.get(note.lesson_id)
        recorders = [p for p in room.participants.values() if p.role == "recorder"] if room is not None else []
        if recorders:  # the live recorder owns the manifest now: it writes the event
            relay = server_message("note", note=note.to_json())
            await asyncio.gather(*(p.send(relay) for p in recorders), return_exceptions=True)
            return
        if self._recording_now(note.lesson_id):
            log.warning("note %s: the recorder of %s is starting; the note is in the database only", note.id,
                        note.lesson_id)
            return
        lock = self._locks.setdefault(note.lesson_id, asyncio.Lock())
        async with lock:
            written = await asyncio.get_running_loop().run_in_executor(None, self._write, note)
        if written:
            self._rewrite_section(note.lesson_id)

    def _rewrite_section(self, lesson_id: str) -> None:
        """Write the report's observation section again, in a process of its own (matplotlib
        never runs in the server); several notes in a row cost one more run at most."""
        if lesson_id in self._rewriting:
            self._again.add(lesson_id)
            return
        self._rewriting.add(lesson_id)
        task = asyncio.get_running_loop().create_task(self._section_process(lesson_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _section_process(self, lesson_id: str) -> None:
        directory = self.directory(lesson_id)
        try:
            while True:
                self._again.discard(lesson_id)
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "analytics.observation", str(directory),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                )
                _, err = await proc.communicate()
                if proc.returncode != 0:
                    log.warning("observation section of %s not rewritten: %s", directory,
                                err.decode(errors="replace")[-300:])
                if lesson_id not in self._again:
                    return
        except OSError as exc:
            log.warning("observation section of %s not rewritten: %s", directory, exc)
        finally:
            self._rewriting.discard(lesson_id)

    def _write(self, note: Note) -> bool:
        """Add the note to the finished recording's manifest; True when the report's
        observation section should be written again."""
        directory = self.directory(note.lesson_id)
        path = directory / "manifest.json"
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        events = raw.setdefault("events", [])
        if any(isinstance(e, dict) and e.get("note_id") == note.id for e in events):
            return False
        events.append(note.event())
        events.sort(key=lambda e: e.get("t_ms", 0) if isinstance(e, dict) else 0)
        write_atomic(path, json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        return (directory / "report" / "report.json").is_file()
