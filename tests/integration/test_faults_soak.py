"""A 30-second soak (``loadtest.soak``; the 30-minute one is run on purpose): lessons start and
end, classrooms join, leave, reconnect and raise hands; RSS grows ≤ 10 % and fds, asyncio tasks
and live lessons return to baseline."""

from __future__ import annotations

import pytest

from loadtest.soak import soak, table


@pytest.mark.timeout(240)
async def test_half_minute_soak() -> None:
    result = await soak(0.5)
    print("\n" + table(result))
    assert result.joins > 10 and result.reconnects > 0 and result.hands > 0 and result.lessons_run >= 2
    assert result.passed, table(result)
