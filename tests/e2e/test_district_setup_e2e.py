"""Real Chromium, issue #15's acceptance for district set-up: on a fresh install an administrator
(the first key the server wrote) creates two schools, three classrooms and a teacher from the
bureau page, imports ten more classrooms from a CSV (one bad row reported, nothing imported from
it), schedules a recorded lesson next week with two remote classrooms, and copies a join link.

"Works when the lesson opens" is checked twice: (1) the copied next-week token is refused today
and accepted at the lesson's time (signature/window by the server's signer, admission by the
server's own schedule database read with a clock set to that time); (2) the administrator then
moves the lesson to now on the page, copies the remote classroom's link again from the links
dialog, and that link joins live in Chromium and plays the lead classroom's video."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from signaling.schedule import ScheduleStore
from signaling.tokens import TokenError
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_bureau_e2e import call, wait_for

pytestmark = pytest.mark.e2e

CST = timezone(timedelta(hours=8))
CSV_ROWS = [
    "school,classroom,role",
    "城关第一中学,初一(2)班,lead",
    "城关第一中学,初一(3)班,remote",
    "石桥村小学,五年级,remote",
    "河西镇中心校,一年级,remote",
    "河西镇中心校,二年级,remote",
    "石桥村小学,六年级,teacher",  # row 7: a bad role
    "河西镇中心校,录播教室,lead",
    "白沙教学点,复式班,remote",
    "白沙教学点,\"一、二年级\",remote",
    "东山小学,三(1)班,remote",
    "东山小学,三(2)班,remote",
]
BAD_ROW = 7


async def set_lang(page: Page, lang: str) -> None:
    """The page's language as its EN / 中文 toggle sets it (i18n.js's setLang; the toggle itself is
    behind the lesson dialog while that is open)."""
    await page.evaluate("(lang) => import('/i18n.js').then((m) => m.setLang(lang))", lang)


async def new_context(browser: Browser) -> BrowserContext:
    # a Chinese browser: the bureau page starts in zh-CN (i18n.js: the browser's language)
    return await browser.new_context(permissions=["clipboard-read", "clipboard-write"], locale="zh-CN")


async def open_page(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    page.on("console", lambda m: print(f"[page] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(url)
    return page


async def add(page: Page, form: str, fields: dict[str, str], selects: dict[str, str], table: str, text: str) -> None:
    for sel, value in selects.items():
        await page.select_option(sel, label=value)
    for sel, value in fields.items():
        await page.fill(sel, value)
    await page.click(f"{form} button[type=submit]")
    await page.wait_for_function(
        "([t, x]) => [...document.querySelectorAll(t + ' input.name-edit')].some((i) => i.value === x)",
        arg=[table, text],
    )


async def copy_link(page: Page, classroom_id: str) -> str:
    await page.click(f'#links-table button.copy-link[data-classroom="{classroom_id}"]')
    await page.wait_for_function(
        "(id) => document.querySelector(`#links-table button.copy-link[data-classroom=\"${id}\"]`)"
        ".textContent.includes('已复制')",
        arg=classroom_id,
    )
    return str(await page.evaluate("navigator.clipboard.readText()"))


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


async def test_fresh_install_district_setup_import_and_next_week_lesson(
    server_proc: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    key = (server_proc.data_dir / "admin-key.txt").read_text().splitlines()[0].strip()
    assert key.startswith("cka_")
    context = await new_context(browser)
    page = await open_page(context, f"{server_proc.url}/bureau.html")
    await page.fill("#api-key", key)
    await page.click("#login")
    await page.wait_for_selector("#app:not(.hidden)")
    # a fresh install opens on the district set-up; the schedule says why it is empty
    await page.wait_for_selector("#setup-view:not(.hidden)")
    await page.wait_for_selector("#setup-empty:not(.hidden)")
    assert await page.locator("#schedule-hint:not(.hidden)").count() == 1

    # ---- two schools, three classrooms, a teacher, from the page
    for name in ("城关第一中学", "石桥村小学"):
        await add(page, "#school-form", {"#school-name": name}, {}, "#schools-table", name)
    rooms = [
        ("城关第一中学", "初一(1)班", "lead"),
        ("石桥村小学", "三年级", "remote"),
        ("石桥村小学", "四年级", "remote"),
    ]
    for school, room, role in rooms:
        await page.select_option("#classroom-role", role)
        await add(page, "#classroom-form", {"#classroom-name": room}, {"#classroom-school": school},
                  "#classrooms-table", room)
    await add(page, "#teacher-form", {"#teacher-name": "王老师"}, {"#teacher-school": "城关第一中学"},
              "#teachers-table", "王老师")
    assert len(call(server_proc, key, "GET", "/api/schools")["schools"]) == 2
    made = call(server_proc, key, "GET", "/api/classrooms")["classrooms"]
    assert sorted((c["name"], c["lead_capable"]) for c in made) == [
        ("三年级", False), ("初一(1)班", True), ("四年级", False)]
    assert [t["name"] for t in call(server_proc, key, "GET", "/api/teachers")["teachers"]] == ["王老师"]

    # ---- ten more classrooms from a CSV (Excel's UTF-8 with a BOM), one bad row
    csv_path = tmp_path / "classrooms.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(CSV_ROWS).encode("utf-8") + b"\r\n")
    await page.set_input_files("#csv-file", str(csv_path))
    await page.click("#csv-check")
    await page.wait_for_selector(f'#csv-preview tr.bad[data-row="{BAD_ROW}"]')
    assert await page.locator("#csv-preview tr.ok").count() == 10
    assert await page.locator("#csv-preview tr.bad").count() == 1
    problem = await page.text_content(f'#csv-preview tr.bad[data-row="{BAD_ROW}"] .problem') or ""
    assert "role" in problem and "角色" in problem  # the field and the zh reason (the page's language)
    assert "预检" in (await page.text_content("#csv-summary") or "")
    await set_lang(page, "en")  # the preview is drawn again in English
    await page.wait_for_function("document.getElementById('csv-summary').textContent.includes('Dry run')")
    problem = await page.text_content(f'#csv-preview tr.bad[data-row="{BAD_ROW}"] .problem') or ""
    assert "role" in problem and "lead" in problem and "角色" not in problem
    await set_lang(page, "zh-CN")
    assert len(call(server_proc, key, "GET", "/api/classrooms")["classrooms"]) == 3  # a dry run writes nothing
    await page.click("#csv-import")
    await page.wait_for_function("document.getElementById('csv-summary').textContent.includes('已导入 10')")
    all_rooms = call(server_proc, key, "GET", "/api/classrooms")["classrooms"]
    assert len(all_rooms) == 13
    assert "六年级" not in {c["name"] for c in all_rooms}  # nothing from the bad row
    assert len(call(server_proc, key, "GET", "/api/schools")["schools"]) == 5
    by_name = {c["name"]: c for c in all_rooms}

    # ---- a recorded lesson next week with two remote classrooms
    await page.click("#tab-schedule")
    await page.wait_for_selector("#schedule-hint.hidden", state="attached")
    await page.click("#next-week")
    await page.click("#new-lesson")
    await page.wait_for_selector("#lesson-dialog[open]")
    offered = await page.eval_on_selector_all("#f-lead option", "os => os.map((o) => o.value).filter(Boolean)")
    assert sorted(offered) == sorted(c["id"] for c in all_rooms if c["lead_capable"])  # lead-capable only
    await page.fill("#f-subject", "数学 Maths")
    await page.fill("#f-title", "分数的意义")
    await page.check(f'#f-remotes input[value="{by_name["三年级"]["id"]}"]')
    await page.click("#f-save")  # no lead chosen: the page names the field in its language
    await page.wait_for_function("document.getElementById('form-error').textContent.includes('主讲课堂：请选择一项')")
    await set_lang(page, "en")
    await page.click("#f-save")
    await page.wait_for_function(
        "document.getElementById('form-error').textContent.includes('Lead classroom: choose one')"
    )
    assert "must be" not in (await page.text_content("#form-error") or "")
    assert await page.text_content('label:has(#f-lead) span') == "Lead classroom"
    await set_lang(page, "zh-CN")
    lead_id = by_name["初一(1)班"]["id"]
    await page.select_option("#f-lead", lead_id)
    assert await page.is_hidden(f'#f-remotes label[data-classroom="{lead_id}"]')  # the lead is not offered as remote
    await page.select_option("#f-teacher", label="王老师 (城关第一中学)")
    await page.check(f'#f-remotes input[value="{by_name["四年级"]["id"]}"]')
    next_week = (datetime.now(CST) + timedelta(days=7)).date()
    await page.fill("#f-date", next_week.isoformat())
    await page.fill("#f-start", "10:00")
    await page.fill("#f-end", "10:45")
    await page.check("#f-recording")
    await page.click("#f-save")
    await page.wait_for_selector("#lesson-dialog:not([open])", state="attached")
    block = f'#week .col[data-day="{next_week.isoformat()}"] .lesson:has-text("分数的意义")'
    await page.wait_for_selector(block, timeout=10000)
    lesson = call(server_proc, key, "GET", "/api/lessons")["lessons"][0]
    assert lesson["recording"] is True and lesson["start"].startswith(next_week.isoformat())
    assert sorted(lesson["remote_classroom_ids"]) == sorted([by_name["三年级"]["id"], by_name["四年级"]["id"]])

    # ---- its join links (not only today's), copied, printable with QR codes
    await page.click(block)
    await page.wait_for_selector("#lesson-dialog[open]")
    await page.click("#f-links")
    await page.wait_for_selector("#links-dialog[open] #links-table tr")
    remote_id = by_name["三年级"]["id"]
    copied = await copy_link(page, remote_id)
    assert copied.startswith(f"{server_proc.url}/remote.html?token=")
    assert await page.locator("#print-sheet img.qr").count() == 3  # lead + two remotes
    await page.emulate_media(media="print")
    assert await page.is_visible("#print-sheet") and await page.is_hidden("#app")
    # the printed QR code of the remote classroom decodes (zbarimg) to the very link copied
    qr_png = tmp_path / "qr.png"
    await page.locator("#print-sheet .sheet-item", has_text="三年级").locator("img.qr").screenshot(path=str(qr_png))
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(qr_png)], capture_output=True, text=True, timeout=30)
    assert decoded.stdout.strip() == copied, decoded
    await page.emulate_media(media="screen")

    # (1) the copied token: refused now, accepted when the lesson opens
    token = token_of(copied)
    with pytest.raises(TokenError):
        server_proc.signer.verify(token)
    opens = datetime.fromisoformat(lesson["start"]).timestamp() - 5 * 60
    claims = server_proc.signer.verify(token, now=opens)
    assert (claims.classroom_id, claims.role, claims.lesson_id) == (remote_id, "remote", lesson["id"])
    store = ScheduleStore.open(server_proc.data_dir, clock=lambda: opens)
    try:
        store.admit(claims)  # raises TokenError when the schedule would refuse it
    finally:
        store.close()
    await page.click("#links-close")
    await page.click("#f-close")

    # (2) move the lesson to now on the page, copy the link again: it joins live
    now = datetime.now(CST)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(day_start, now - timedelta(minutes=5))
    end = min(day_start + timedelta(hours=23, minutes=59), now + timedelta(minutes=40))
    await page.click(block)
    await page.wait_for_selector("#lesson-dialog[open]")
    await page.fill("#f-date", start.date().isoformat())
    await page.fill("#f-start", start.strftime("%H:%M"))
    await page.fill("#f-end", end.strftime("%H:%M"))
    await page.click("#f-save")
    await page.wait_for_selector("#lesson-dialog:not([open])", state="attached")
    moved = f'#week .col[data-day="{start.date().isoformat()}"] .lesson:has-text("分数的意义")'
    await page.wait_for_selector(moved, timeout=10000)
    await page.wait_for_selector("#today li button.today-links", timeout=10000)  # today's card offers them too
    await page.click(moved)
    await page.wait_for_selector("#lesson-dialog[open]")
    await page.click("#f-links")
    await page.wait_for_selector("#links-dialog[open] #links-table tr")
    remote_url = await copy_link(page, remote_id)
    lead_url = await page.input_value(f'#links-table tr[data-classroom="{lead_id}"] input.link-url')

    lead_page = await open_page(await browser.new_context(), lead_url)
    await wait_for(
        lambda: lead_page.evaluate("document.getElementById('live').textContent.includes('LIVE')"), 30, "lead live"
    )
    remote_page = await open_page(await browser.new_context(), remote_url)
    await wait_for(
        lambda: remote_page.evaluate("document.getElementById('main').videoWidth > 0"), 40,
        "the copied remote link to play the lead",
    )
    live = call(server_proc, key, "GET", f"/api/lessons/{lesson['id']}/live")
    assert remote_id in live["connected"]


async def test_weekly_lesson_with_exceptions_is_edited_and_one_week_cancelled_on_the_page(
    server_proc: ServerProcess, browser: Browser
) -> None:
    key = (server_proc.data_dir / "admin-key.txt").read_text().splitlines()[0].strip()
    school = call(server_proc, key, "POST", "/api/schools", {"name": "城关第一中学"})
    lead = call(server_proc, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "主讲室"})
    remote = call(server_proc, key, "POST", "/api/classrooms",
                  {"school_id": school["id"], "name": "接收室", "lead_capable": False})
    page = await open_page(await new_context(browser), f"{server_proc.url}/bureau.html")
    await page.fill("#api-key", key)
    await page.click("#login")
    await page.wait_for_selector("#app:not(.hidden)")

    first = (datetime.now(CST) + timedelta(days=7)).date()
    weeks = [first + timedelta(days=7 * i) for i in range(4)]
    await page.click("#next-week")
    await page.click("#new-lesson")
    await page.wait_for_selector("#lesson-dialog[open]")
    offered = await page.eval_on_selector_all("#f-lead option", "os => os.map((o) => o.value).filter(Boolean)")
    assert offered == [lead["id"]]  # the remote-only room is not offered as lead
    await page.fill("#f-subject", "语文")
    await page.fill("#f-title", "古诗两首")
    await page.select_option("#f-lead", lead["id"])
    await page.check(f'#f-remotes input[value="{remote["id"]}"]')
    await page.fill("#f-date", first.isoformat())
    await page.fill("#f-start", "14:00")
    await page.fill("#f-end", "14:40")
    await page.fill("#f-until", weeks[3].isoformat())
    await page.fill("#f-exceptions", weeks[1].isoformat())
    await page.click("#f-save")
    await page.wait_for_selector("#lesson-dialog:not([open])", state="attached")
    lesson = call(server_proc, key, "GET", "/api/lessons")["lessons"][0]
    assert lesson["recurrence"] == {"frequency": "weekly", "until": weeks[3].isoformat(),
                                    "exceptions": [weeks[1].isoformat()]}

    # edit: one more exception, a later until (the form shows the lesson's recurrence)
    block = f'#week .col[data-day="{first.isoformat()}"] .lesson:has-text("古诗两首")'
    await page.wait_for_selector(block, timeout=10000)
    await page.click(block)
    await page.wait_for_selector("#lesson-dialog[open]")
    assert await page.input_value("#f-until") == weeks[3].isoformat()
    assert await page.input_value("#f-exceptions") == weeks[1].isoformat()
    later = weeks[3] + timedelta(days=7)
    await page.fill("#f-until", later.isoformat())
    await page.fill("#f-exceptions", f"{weeks[1].isoformat()}, {weeks[2].isoformat()}")
    await page.click("#f-save")
    await page.wait_for_selector("#lesson-dialog:not([open])", state="attached")
    lesson = call(server_proc, key, "GET", f"/api/lessons/{lesson['id']}")
    assert lesson["recurrence"]["until"] == later.isoformat()
    assert lesson["recurrence"]["exceptions"] == [weeks[1].isoformat(), weeks[2].isoformat()]

    # a bad until is refused with the field named, in zh and en
    await page.click(block)
    await page.wait_for_selector("#lesson-dialog[open]")
    await page.fill("#f-until", (first - timedelta(days=1)).isoformat())
    await page.click("#f-save")
    await page.wait_for_function("document.getElementById('form-error').textContent.includes('重复至：')")
    assert await page.locator("#f-until.invalid").count() == 1
    await set_lang(page, "en")
    await page.click("#f-save")
    await page.wait_for_function("document.getElementById('form-error').textContent.includes('Weekly until:')")
    await page.click("#f-close")

    # cancel one week (the first) from the timetable
    await page.click(block)
    await page.wait_for_selector("#lesson-dialog[open]")
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("#f-cancel-occurrence")
    await page.wait_for_selector("#lesson-dialog:not([open])", state="attached")
    occurrences = call(server_proc, key, "GET", f"/api/lessons/{lesson['id']}/occurrences")["occurrences"]
    assert [o["date"] for o in occurrences] == [weeks[3].isoformat(), later.isoformat()]
    await page.wait_for_selector(block, state="detached", timeout=10000)
