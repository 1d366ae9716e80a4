"""The bureau page's research dashboard (教研看板, issue #18 item 3) in real Chromium against a real
``classroom serve`` holding the 30-lesson term of tests/integration/schedule/term.py: the page shows
both planted patterns (石门村小 never had the floor: first in the fairness table and marked rarely
heard; 李老师's Rt rises over the term), its four charts load, the filters narrow it, the CSV export
downloads, the page switches to English. A full-page screenshot is written to the test's directory
at 1280 and 390 px wide (and, with ``CLASSROOM_SCREENSHOT_DIR=docs/screenshots``, there as
``bureau-dashboard-1280.png`` and ``-390.png``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser

from signaling.schedule import ScheduleStore
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_bureau_e2e import new_page
from tests.integration.schedule.term import WEEKS, build_term

pytestmark = pytest.mark.e2e


async def test_research_dashboard_shows_the_planted_patterns(
    server_proc: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    key = (server_proc.data_dir / "admin-key.txt").read_text().split()[0]
    store = ScheduleStore.open(server_proc.data_dir)
    try:
        term = build_term(store, server_proc.data_dir, key)
    finally:
        store.close()

    page = await new_page(browser, f"{server_proc.url}/bureau.html?lang=zh-CN")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.fill("#api-key", key)
    await page.click("#login")
    await page.wait_for_selector("#app:not(.hidden)")
    await page.click("#tab-analytics")
    await page.wait_for_selector("body[data-dashboard=ready]", timeout=30000)

    # the fairness table: the never-floored classroom first, marked; every other one had the floor
    first = page.locator("#dash-fairness tbody tr").first
    assert await first.get_attribute("data-classroom") == term.never_floored
    assert await first.get_attribute("class") == "dash-rare"
    cells = await first.locator("td").all_text_contents()
    assert cells[0] == "石门村小" and cells[2] == str(WEEKS) and cells[3] == "0" and "很少被听到" in cells[-1]
    assert await page.locator("#dash-fairness tr.dash-rare").count() == 1
    # the drifting teacher: Rt rises over the term, lecture lessons in her modes
    li = await page.locator(f'#dash-teachers tr[data-teacher="{term.teachers["li"]}"] td').all_text_contents()
    assert li[0] == "李老师" and li[2] == str(WEEKS) and "讲授型 4" in li[3] and li[6].startswith("+")
    # the charts are real images the server drew
    for chart in ("rt_ch", "modes", "fairness", "scores"):
        width = await page.eval_on_selector(f"#dash-chart-{chart}", "img => img.naturalWidth")
        assert width > 600, chart
    assert await page.locator("#dash-scores tbody tr").count() >= 3

    for width, height in ((1280, 800), (390, 844)):  # a desktop, a phone: no sideways page scroll
        await page.set_viewport_size({"width": width, "height": height})
        assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth"), width
        shot = tmp_path / f"bureau-dashboard-{width}.png"
        await page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("CLASSROOM_SCREENSHOT_DIR"):
            shutil.copy(shot, Path(os.environ["CLASSROOM_SCREENSHOT_DIR"]) / shot.name)
    await page.set_viewport_size({"width": 1280, "height": 800})

    # filters: one teacher, from October on
    await page.select_option("#dash-teacher", term.teachers["li"])
    await page.fill("#dash-from", "2026-10-01")
    await page.evaluate("document.body.dataset.dashboard = ''")
    await page.click("#dash-apply")
    await page.wait_for_selector("body[data-dashboard=ready]", timeout=30000)
    assert await page.locator("#dash-teachers tbody tr").count() == 1
    tiles = await page.locator("#dash-totals .dash-tile strong").all_text_contents()
    assert tiles[0] == "6"

    # the CSV export downloads the lessons of that selection
    async with page.expect_download() as info:
        await page.click("#dash-csv-lessons")
    download = await info.value
    text = Path(await download.path()).read_text(encoding="utf-8-sig")
    assert text.count("\n") == 1 + 6 and "李老师" in text

    # English
    await page.click("header #lang")  # the page header's toggle (one per page)
    await page.wait_for_function("document.querySelector('#dash-fairness h2').textContent.includes('heard')")
    assert "Research dashboard" in (await page.text_content("#dash-filters h2") or "")
    await page.context.close()
