"""Real Chromium: a bureau administrator schedules a lesson on the bureau page (a conflict is
shown inline), then the lead and a remote classroom join through the page's links and see
each other, and the page shows the lesson live."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from signaling.schedule import ScheduleStore
from signaling.schedule.cli import create_admin
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e

CST = timezone(timedelta(hours=8))


def call(srv: ServerProcess, key: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        srv.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


async def new_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    page.on(
        "console",
        lambda m: print(f"[page] {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    await page.goto(url)
    return page


async def fill_lesson(page: Page, title: str, lead: str, remote: str, start: str, end: str) -> None:
    await page.click("#new-lesson")
    await page.wait_for_selector("#lesson-dialog[open]")
    await page.fill("#f-subject", "数学 Maths")
    await page.fill("#f-title", title)
    await page.select_option("#f-lead", lead)
    await page.check(f'#f-remotes input[value="{remote}"]')
    await page.fill("#f-start", start)
    await page.fill("#f-end", end)
    await page.click("#f-save")


async def test_admin_schedules_and_classrooms_join_via_links(server_proc: ServerProcess, browser: Browser) -> None:
    store = ScheduleStore.open(server_proc.data_dir)
    try:
        key = create_admin(store, "E2E County Bureau", "e2e-admin")
    finally:
        store.close()
    school = call(server_proc, key, "POST", "/api/schools", {"name": "No. 1 Middle School"})
    rural = call(server_proc, key, "POST", "/api/schools", {"name": "Village School"})
    lead = call(server_proc, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "主讲 A"})
    remote = call(server_proc, key, "POST", "/api/classrooms", {"school_id": rural["id"], "name": "远端 B"})
    other_lead = call(server_proc, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "主讲 C"})
    now = datetime.now(CST)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(day_start, now - timedelta(minutes=5))
    end = min(day_start + timedelta(hours=23, minutes=59), now + timedelta(minutes=40))

    page = await new_page(browser, f"{server_proc.url}/bureau.html?lang=zh-CN")
    await page.fill("#api-key", key)
    await page.click("#login")
    await page.wait_for_selector("#app:not(.hidden)")
    assert "E2E County Bureau" in (await page.text_content("#bureau-name") or "")

    await fill_lesson(page, "E2E fractions", lead["id"], remote["id"], start.strftime("%H:%M"), end.strftime("%H:%M"))
    await page.wait_for_selector("#lesson-dialog:not([open])", state="attached")
    await page.wait_for_selector('.lesson[data-lesson]:has-text("E2E fractions")', timeout=10000)

    # the same remote classroom at the same time from another lead: refused, shown inline
    await fill_lesson(page, "Clash", other_lead["id"], remote["id"], start.strftime("%H:%M"), end.strftime("%H:%M"))
    await page.wait_for_function("document.getElementById('form-error').textContent.includes('E2E fractions')")
    error = await page.text_content("#form-error") or ""
    assert "时间冲突" in error and "远端 B" in error
    # the same refusal in English after the language toggle (i18n.js's setLang, as the header's EN does)
    await page.evaluate("import('/i18n.js').then((m) => m.setLang('en'))")
    await page.click("#f-save")
    await page.wait_for_function("document.getElementById('form-error').textContent.includes('Scheduling conflict')")
    assert "classroom 远端 B" in (await page.text_content("#form-error") or "")
    marked = page.locator(f'#f-remotes label.invalid[data-classroom="{remote["id"]}"]')
    assert await marked.count() == 1
    await page.click("#f-close")
    lessons = call(server_proc, key, "GET", "/api/lessons")["lessons"]
    assert [x["title"] for x in lessons] == ["E2E fractions"]

    # today's list has the lesson with join links
    await page.wait_for_selector('#today a.join-link[data-role="lead"]', timeout=10000)
    lead_url = await page.get_attribute('#today a.join-link[data-role="lead"]', "href")
    remote_url = await page.get_attribute('#today a.join-link[data-role="remote"]', "href")
    assert lead_url and lead_url.startswith(server_proc.url + "/lead.html?token=")
    assert remote_url and remote_url.startswith(server_proc.url + "/remote.html?token=")

    lead_page = await new_page(browser, lead_url)
    await wait_for(
        lambda: lead_page.evaluate("document.getElementById('live').textContent.includes('LIVE')"),
        30,
        "lead live",
    )
    remote_page = await new_page(browser, remote_url)

    async def remote_sees_lead() -> bool:
        return bool(await remote_page.evaluate("document.getElementById('main').videoWidth > 0"))

    await wait_for(remote_sees_lead, 40, "remote to play the lead")
    sel = f'#grid [data-classroom="{remote["id"]}"] video'

    async def lead_sees_remote() -> bool:
        return bool(await lead_page.evaluate(f"(document.querySelector('{sel}')?.videoWidth || 0) > 0"))

    await wait_for(lead_sees_remote, 40, "lead to see the remote classroom")

    # the bureau page polls: the lesson is live with both classrooms connected
    item = '#today li[data-status="live"]'
    await page.wait_for_selector(item, timeout=15000)
    await page.wait_for_selector(f'{item} .room.on[data-classroom="{remote["id"]}"]', timeout=15000)
    await page.wait_for_selector(f'{item} .room.on[data-classroom="{lead["id"]}"]', timeout=15000)
    live = call(server_proc, key, "GET", f"/api/lessons/{lessons[0]['id']}/live")
    assert live["status"] == "live"
    assert sorted(live["connected"]) == sorted([lead["id"], remote["id"]])
    # scheduled lessons are recorded by default (#15): the recorder's join is in the history too
    assert {h["classroom_id"] for h in live["history"]} - {"recorder"} == {lead["id"], remote["id"]}
