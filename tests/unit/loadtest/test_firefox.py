"""The pure parts of loadtest.firefox: prefs, command lines, script expressions, reply decoding;
what FirefoxPage sends for a click and a fill (against a stand-in for the driver process); and the
npm driver's pins (puppeteer-core exact, a Node.js that Debian 12 ships)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.firefox import (
    CLICK_TARGET_SOURCE,
    DRIVER,
    DRIVER_DIR,
    FILL_SOURCE,
    FIREFOX_PREFS,
    FirefoxError,
    FirefoxPage,
    decode_reply,
    decode_result,
    driver_argv,
    evaluate_expression,
    firefox_argv,
    profile_prefs,
    user_js,
)


def test_only_fake_media_and_permission_prefs_are_changed() -> None:
    assert set(FIREFOX_PREFS) == {"media.navigator.streams.fake", "media.navigator.permission.disabled"}
    # nothing about ICE, mDNS or autoplay: those stay as a user's Firefox has them
    assert not any(w in k for k in FIREFOX_PREFS for w in ("peerconnection", "mdns", "autoplay"))


def test_a_plain_http_test_host_is_made_a_secure_origin() -> None:
    prefs = profile_prefs(["10.88.1.1", "10.88.2.1"])
    assert prefs["dom.securecontext.allowlist"] == "10.88.1.1,10.88.2.1"
    assert set(prefs) - set(FIREFOX_PREFS) == {"dom.securecontext.allowlist"}
    assert profile_prefs() == FIREFOX_PREFS


def test_user_js_lines() -> None:
    text = user_js({"a.b": True, "c": 3, "d": "x\"y"})
    assert text.splitlines() == ['user_pref("a.b", true);', 'user_pref("c", 3);', 'user_pref("d", "x\\"y");']


def test_argv_headless_bidi_on_a_free_port() -> None:
    argv = firefox_argv(Path("/tmp/p"))
    assert argv[0] == "/usr/bin/firefox-esr"
    assert "--headless" in argv and "--remote-debugging-port=0" in argv
    assert argv[argv.index("--profile") + 1] == "/tmp/p"


def test_the_driver_runs_in_the_namespace_and_is_told_how_to_start_firefox() -> None:
    launch = {"argv": firefox_argv(Path("/tmp/p")), "log": "/tmp/p/firefox.log", "timeout_ms": 30000}
    argv = driver_argv(launch, netns="ff-1-cls", node="/usr/bin/node")
    assert argv[:4] == ["ip", "netns", "exec", "ff-1-cls"]
    assert argv[4:6] == ["/usr/bin/node", str(DRIVER)]
    assert json.loads(argv[6]) == launch
    assert driver_argv(launch)[0] == "node"


def test_puppeteer_core_is_pinned_exactly_for_debian_12s_node() -> None:
    package = json.loads((DRIVER_DIR / "package.json").read_text())
    version = package["dependencies"]["puppeteer-core"]
    assert version[0].isdigit(), "an exact version: the lock file and CI install the same driver"
    lock = json.loads((DRIVER_DIR / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/puppeteer-core"]
    assert pinned["version"] == version
    # Debian 12's nodejs is 18.x: every locked package must accept it (puppeteer-core 25 wants 22.12)
    for name, entry in lock["packages"].items():
        engines = (entry.get("engines") or {}).get("node", "")
        assert not any(f">={v}" in engines.replace(" ", "") for v in (19, 20, 21, 22, 23, 24)), (name, engines)
    assert "node_modules/" in (DRIVER_DIR.parents[1] / ".gitignore").read_text()
    assert "puppeteer.launch(" not in DRIVER.read_text().replace("Not puppeteer.launch()", "")


def test_expression_and_function_call() -> None:
    assert evaluate_expression("1 + 2").startswith("(async () => { const v = await (1 + 2);")
    call = evaluate_expression("(x) => x.n", {"n": "a'b"})
    assert '((x) => x.n)({"n": "a\'b"})' in call
    assert evaluate_expression("f", None).count("(null)") == 1  # None is an argument too


def test_decode_result_and_reply() -> None:
    assert decode_result(json.dumps({"a": [1]})) == {"a": [1]}
    assert decode_result("null") is None
    with pytest.raises(FirefoxError, match="unexpected"):
        decode_result(1)
    assert decode_reply({"id": 3, "result": "p1"}) == "p1"
    assert decode_reply({"id": 3, "result": None}) is None
    with pytest.raises(FirefoxError, match="TypeError: x"):
        decode_reply({"id": 3, "error": "TypeError: x"})


async def test_a_script_that_throws_is_an_error_naming_it() -> None:
    class Throwing:
        async def command(self, op: str, params: dict[str, Any], timeout: float = 70.0) -> Any:
            raise FirefoxError("evaluate: no element matches #x")

    with pytest.raises(FirefoxError, match="page script threw: evaluate: no element matches #x"):
        await FirefoxPage(Throwing(), "p1").evaluate("1")  # type: ignore[arg-type]


class FakeDriver:
    """Records driver commands; evaluate answers ``value`` the way driver.mjs does (JSON text)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def command(self, op: str, params: dict[str, Any], timeout: float = 70.0) -> Any:
        self.sent.append((op, params))
        return json.dumps(self.value) if op == "evaluate" else None


def _page(value: Any) -> tuple[FirefoxPage, FakeDriver]:
    session = FakeDriver(value)
    return FirefoxPage(session, "p1"), session  # type: ignore[arg-type]


async def test_click_waits_in_the_page_then_sends_one_real_pointer_click() -> None:
    page, session = _page({"x": 100.6, "y": 40.2})
    await page.click("#hand", timeout=3)
    (method, params), (action, act) = session.sent
    assert method == "evaluate" and CLICK_TARGET_SOURCE.strip() in params["expression"]
    assert '"selector": "#hand"' in params["expression"] and '"timeout_ms": 3000' in params["expression"]
    assert params["page"] == "p1"
    assert (action, act) == ("click", {"page": "p1", "x": 100, "y": 40})


async def test_click_on_nothing_clickable_is_an_error_and_clicks_nothing() -> None:
    page, session = _page(None)
    with pytest.raises(FirefoxError, match="#missing"):
        await page.click("#missing", timeout=1)
    assert [m for m, _ in session.sent] == ["evaluate"]


async def test_fill_sets_the_value_and_fires_input_and_change() -> None:
    page, session = _page(True)
    await page.fill("#f-start", "09:30")
    ((method, params),) = session.sent
    assert method == "evaluate" and FILL_SOURCE.strip() in params["expression"]
    assert '"value": "09:30"' in params["expression"]
    assert "'input'" in FILL_SOURCE and "'change'" in FILL_SOURCE and "bubbles: true" in FILL_SOURCE

