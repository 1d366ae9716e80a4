from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import Live, live_server


@pytest.fixture
def live() -> Iterator[Live]:
    """A real ``classroom serve`` subprocess and a pinging watchdog classroom (tests/fuzz/harness.py)."""
    with live_server() as srv:
        yield srv
