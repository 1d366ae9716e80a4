"""The page's playout-delay policy (client_web/smoothing.js ``PlayoutPolicy``), run in Chromium
on made-up 2-s samples: what it raises the delay for, and what it must not."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser

from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e

RUN = """async (samples) => {
    const m = await import('/smoothing.js');
    const p = new m.PlayoutPolicy();
    return samples.map(([share, rtt]) => p.step(share, rtt));
}"""


async def _steps(server_proc: ServerProcess, browser: Browser, samples: list[list[float]]) -> list[Any]:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server_proc.url}/index.html")
    out: list[Any] = await page.evaluate(RUN, samples)
    await page.close()
    return out


async def test_persistent_repairs_on_a_long_line_raise_the_delay_then_it_goes(
        server_proc: ServerProcess, browser: Browser) -> None:
    samples = [[0.04, 0.1], [0.04, 0.1], [0.04, 0.1]] + [[0.0, 0.1]] * 10
    steps = await _steps(server_proc, browser, samples)
    assert steps[0] is None  # one sample is not yet a lossy line
    assert steps[1] == 310  # 2.5 round trips + 60 ms
    assert steps[2:11] == [None] * 9
    assert steps[12] == 0  # ~20 s clean: back to the browser's own choice


async def test_the_onset_of_a_cap_is_not_a_long_line(server_proc: ServerProcess, browser: Browser) -> None:
    # a 1-ms path; at the cap its queue makes the round trip 250 ms and a few packets are lost
    # once, then the server moves the classroom to a lower layer
    samples = [[0.0, 0.001], [0.0, 0.001], [0.05, 0.25], [0.0, 0.2], [0.0, 0.08]]
    assert await _steps(server_proc, browser, samples) == [None] * 5
    # lossy for longer on that short path: the floor of 120 ms, not 2.5 × the queue
    samples = [[0.0, 0.001], [0.05, 0.25], [0.05, 0.2], [0.05, 0.2]]
    assert await _steps(server_proc, browser, samples) == [None, None, 120, None]
