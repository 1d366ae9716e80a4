"""Late-joiner benchmark in real Chromium: how long after its page starts loading does a remote
classroom that joins an ongoing lesson show the lead's video?

    python -m loadtest.late_join --runs 5 --json out.json

Starts ``classroom serve`` (pinned to core 0), a headless Chromium (Debian's, fake camera and
mic) with a lead page publishing 720p, one remote already watching, then opens ``--runs`` late
remote pages one after another. For each it reads the page's milestones (ms since navigation
start): WebSocket open, joined, subscribe offer, connection established, first decoded frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from loadtest.serverproc import start_server


async def _wait(page: Any, expr: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await page.evaluate(expr):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(expr)


async def run(runs: int, settle_s: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    server = start_server(cpu=0)
    signer = server.signer
    results: list[dict[str, int]] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )

            async def open_page(classroom: str, role: str, page_name: str) -> Any:
                token = signer.issue("bench", classroom, role, classroom)
                page = await (await browser.new_context()).new_page()
                await page.goto(f"{server.base_url}/{page_name}?token={token}")
                return page

            lead = await open_page("lead", "lead", "lead.html")
            await _wait(lead, "document.getElementById('live').textContent.includes('LIVE')", 30)
            first = await open_page("r0", "remote", "remote.html")
            await _wait(first, "window.firstFrameMs !== null", 30)
            for i in range(runs):
                await asyncio.sleep(settle_s)
                page = await open_page(f"late-{i}", "remote", "remote.html")
                await _wait(page, "window.firstFrameMs !== null", 30)
                marks = dict(await page.evaluate("window.classroomTimeline"))
                marks["dom_loaded"] = int(await page.evaluate(
                    "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
                results.append(marks)
                print(f"  late joiner {i + 1}: first frame {marks['first_frame']} ms "
                      f"(joined {marks.get('joined')}, connected {marks.get('subscribe_connected')})")
                await page.context.close()
            await browser.close()
    finally:
        server.stop()
    firsts = [r["first_frame"] for r in results]
    from_dom = [r["first_frame"] - r["dom_loaded"] for r in results]
    return {
        "runs": runs,
        "first_frame_ms": firsts,
        "first_frame_ms_median": statistics.median(firsts),
        "first_frame_ms_max": max(firsts),
        "first_frame_after_dom_loaded_ms_median": statistics.median(from_dom),
        "milestones": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.late_join", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between joiners")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.runs, args.settle))
    print(f"first frame after navigation start: median {result['first_frame_ms_median']} ms, "
          f"max {result['first_frame_ms_max']} ms; after DOMContentLoaded: median "
          f"{result['first_frame_after_dom_loaded_ms_median']} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
