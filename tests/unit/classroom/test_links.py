"""classroom/links.py: the base URL of every link; never 0.0.0.0."""

from __future__ import annotations

import pytest

from classroom.links import derive_base_url, is_loopback, is_wildcard, lan_address, url_host


@pytest.mark.parametrize(("args", "url"), [
    (("", "127.0.0.1", 8080, False), "http://127.0.0.1:8080"),
    (("", "localhost", 8080, False), "http://localhost:8080"),
    (("", "10.77.0.1", 8080, True), "https://10.77.0.1:8080"),
    (("", "10.77.0.1", 443, True), "https://10.77.0.1"),
    (("", "10.77.0.1", 80, False), "http://10.77.0.1"),
    (("", "10.77.0.1", 443, False), "http://10.77.0.1:443"),
    (("", "2001:db8::5", 8443, True), "https://[2001:db8::5]:8443"),
    (("", "[2001:db8::5]", 8443, True), "https://[2001:db8::5]:8443"),
    (("https://classroom.county.example.cn/", "127.0.0.1", 8080, False), "https://classroom.county.example.cn"),
    ((" https://c.example.cn/classroom/ ", "0.0.0.0", 8080, True), "https://c.example.cn/classroom"),
])
def test_derive(args: tuple[str, str, int, bool], url: str) -> None:
    assert derive_base_url(*args, ice_addresses=[], detected=[]) == url


def test_wildcard_uses_the_lan_address() -> None:
    # the configured ICE address (what the operator named as the LAN address) first
    assert derive_base_url("", "0.0.0.0", 8080, True, ["127.0.0.1", "10.77.0.1"], ["192.0.2.2"]) \
        == "https://10.77.0.1:8080"
    # else the detected one (default route, host name)
    assert derive_base_url("", "0.0.0.0", 8080, True, ["127.0.0.1"], ["192.0.2.2"]) == "https://192.0.2.2:8080"
    assert derive_base_url("", "::", 8080, False, [], ["fd00::2"]) == "http://[fd00::2]:8080"
    # nothing found: loopback, never 0.0.0.0
    assert derive_base_url("", "0.0.0.0", 8080, False, ["0.0.0.0"], []) == "http://127.0.0.1:8080"
    assert derive_base_url("", "", 8080, False, [], []) == "http://127.0.0.1:8080"


def test_detection_runs_when_not_given() -> None:
    url = derive_base_url("", "0.0.0.0", 8080, True)
    assert url.startswith("https://") and "0.0.0.0" not in url


def test_helpers() -> None:
    assert is_wildcard("0.0.0.0") and is_wildcard("::") and is_wildcard("") and not is_wildcard("10.0.0.1")
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("LOCALHOST")
    assert not is_loopback("10.0.0.1") and not is_loopback("0.0.0.0") and not is_loopback("example.cn")
    assert lan_address(["127.0.0.1", "0.0.0.0"], []) is None
    assert url_host("https://[fd00::2]:8443/x") == "fd00::2" and url_host("") == ""
