"""A 1-minute soak (``loadtest.soak``): lessons start and end, classrooms join, leave, reconnect
and raise hands; RSS grows ≤ 10 % and fds, asyncio tasks and live lessons return to baseline."""

from __future__ import annotations

import pytest

from loadtest.soak import soak, table


@pytest.mark.timeout(240)
async def test_one_minute_soak() -> None:
    result = await soak(1.0)
    print("\n" + table(result))
    assert result.joins > 10 and result.reconnects > 0 and result.hands > 0 and result.lessons_run >= 2
    assert result.passed, table(result)
