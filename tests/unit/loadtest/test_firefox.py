"""The pure parts of loadtest.firefox: prefs, command line, script expressions, result decoding;
and what FirefoxPage sends for a click and a fill (against a stand-in for the BiDi session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.firefox import (
    CLICK_TARGET_SOURCE,
    FILL_SOURCE,
    FIREFOX_PREFS,
    FirefoxError,
    FirefoxPage,
    decode_result,
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


def test_argv_headless_bidi_on_a_free_port_in_a_namespace() -> None:
    argv = firefox_argv(Path("/tmp/p"), netns="ff-1-cls")
    assert argv[:4] == ["ip", "netns", "exec", "ff-1-cls"]
    assert "--headless" in argv and "--remote-debugging-port=0" in argv
    assert argv[argv.index("--profile") + 1] == "/tmp/p"
    assert firefox_argv(Path("/tmp/p"))[0] == "/usr/bin/firefox-esr"


def test_expression_and_function_call() -> None:
    assert evaluate_expression("1 + 2").startswith("(async () => { const v = await (1 + 2);")
    call = evaluate_expression("(x) => x.n", {"n": "a'b"})
    assert '((x) => x.n)({"n": "a\'b"})' in call
    assert evaluate_expression("f", None).count("(null)") == 1  # None is an argument too


def test_decode_result() -> None:
    assert decode_result({"type": "success", "result": {"type": "string", "value": json.dumps({"a": [1]})}}) \
        == {"a": [1]}
    with pytest.raises(FirefoxError, match="threw: TypeError: x"):
        decode_result({"type": "exception", "exceptionDetails": {"text": "TypeError: x"}})
    with pytest.raises(FirefoxError, match="unexpected"):
        decode_result({"type": "success", "result": {"type": "number", "value": 1}})


class FakeSession:
    """Records BiDi commands; script.evaluate answers ``value`` the way Firefox does."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def command(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        self.sent.append((method, params))
        if method == "script.evaluate":
            return {"type": "success", "result": {"type": "string", "value": json.dumps(self.value)}}
        return {}


def _page(value: Any) -> tuple[FirefoxPage, FakeSession]:
    session = FakeSession(value)
    return FirefoxPage(session, "ctx-1"), session  # type: ignore[arg-type]


async def test_click_waits_in_the_page_then_sends_one_real_pointer_click() -> None:
    page, session = _page({"x": 100.6, "y": 40.2})
    await page.click("#hand", timeout=3)
    (method, params), (action, act) = session.sent
    assert method == "script.evaluate" and CLICK_TARGET_SOURCE.strip() in params["expression"]
    assert '"selector": "#hand"' in params["expression"] and '"timeout_ms": 3000' in params["expression"]
    assert action == "input.performActions" and act["context"] == "ctx-1"
    steps = act["actions"][0]["actions"]
    assert [s["type"] for s in steps] == ["pointerMove", "pointerDown", "pointerUp"]
    assert (steps[0]["x"], steps[0]["y"]) == (100, 40)


async def test_click_on_nothing_clickable_is_an_error_and_clicks_nothing() -> None:
    page, session = _page(None)
    with pytest.raises(FirefoxError, match="#missing"):
        await page.click("#missing", timeout=1)
    assert [m for m, _ in session.sent] == ["script.evaluate"]


async def test_fill_sets_the_value_and_fires_input_and_change() -> None:
    page, session = _page(True)
    await page.fill("#f-start", "09:30")
    ((method, params),) = session.sent
    assert method == "script.evaluate" and FILL_SOURCE.strip() in params["expression"]
    assert '"value": "09:30"' in params["expression"]
    assert "'input'" in FILL_SOURCE and "'change'" in FILL_SOURCE and "bubbles: true" in FILL_SOURCE

