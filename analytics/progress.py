"""A small text progress bar on stderr (no dependency)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Weighted steps; ``advance(w)`` adds work done, ``note`` changes the label."""

    def __init__(self, total: float, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1e-9)
        self.done = 0.0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.label = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last = 0.0

    def note(self, label: str) -> None:
        with self._lock:
            self.label = label
        self._draw(force=True)

    def advance(self, amount: float, label: str | None = None) -> None:
        with self._lock:
            self.done = min(self.total, self.done + amount)
            if label is not None:
                self.label = label
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        frac = self.done / self.total
        width = 28
        filled = int(round(frac * width))
        bar = "#" * filled + "-" * (width - filled)
        elapsed = now - self.started
        line = f"\r[{bar}] {frac * 100:5.1f}% {elapsed:5.1f}s {self.label[:40]:<40}"
        self.stream.write(line)
        self.stream.flush()

    def finish(self, label: str = "done") -> None:
        with self._lock:
            self.done = self.total
            self.label = label
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
