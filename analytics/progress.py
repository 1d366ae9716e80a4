"""The analysis's progress bar on stderr (tqdm): weighted steps with a changing label."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


class Progress:
    """Weighted steps; ``advance(w)`` adds work done, ``note`` changes the label."""

    def __init__(self, total: float, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1e-9)
        self.enabled = enabled
        self._bar: Any = tqdm(
            total=self.total, file=stream or sys.stderr, disable=not enabled, mininterval=0.1,
            bar_format="[{bar:28}] {percentage:5.1f}% {elapsed} {desc}", ascii="-#",
        )

    @property
    def done(self) -> float:
        return float(self._bar.n)

    def note(self, label: str) -> None:
        self._bar.set_description_str(label[:40])

    def advance(self, amount: float, label: str | None = None) -> None:
        if label is not None:
            self._bar.set_description_str(label[:40], refresh=False)
        self._bar.update(min(amount, self.total - self._bar.n))

    def finish(self, label: str = "done") -> None:
        self._bar.set_description_str(label[:40], refresh=False)
        self._bar.update(self.total - self._bar.n)
        self._bar.close()
