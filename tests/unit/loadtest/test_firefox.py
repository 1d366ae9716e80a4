"""The pure parts of loadtest.firefox: prefs, command line, script expressions, result decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.firefox import (
    FIREFOX_PREFS,
    FirefoxError,
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
