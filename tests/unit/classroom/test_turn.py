"""classroom/turn.py: the TURN URLs classrooms get (UDP, TCP, TLS), their time-limited
credentials, and the settings that are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from classroom.config import ConfigError, MediaConfig, load_config
from classroom.turn import IceServers, TurnConfigError, parse_turn_url, turn_credentials, turn_urls
from signaling.ice_servers import current_ice_servers


def test_udp_then_tcp_then_tls_in_that_order() -> None:
    assert turn_urls("turn:turn.example.cn:3478", True, "turns:turn.example.cn:443") == [
        "turn:turn.example.cn:3478",
        "turn:turn.example.cn:3478?transport=tcp",
        "turns:turn.example.cn:443",
    ]


def test_tcp_can_be_left_out_and_is_not_doubled() -> None:
    assert turn_urls("turn:10.0.0.5:3478", False, "") == ["turn:10.0.0.5:3478"]
    assert turn_urls("turn:10.0.0.5:3478?transport=tcp", True, "") == ["turn:10.0.0.5:3478?transport=tcp"]
    assert turn_urls("turn:10.0.0.5", True, "") == ["turn:10.0.0.5", "turn:10.0.0.5:3478?transport=tcp"]


def test_tls_alone_is_enough() -> None:
    assert turn_urls("", True, "turns:turn.example.cn:443?transport=tcp") == ["turns:turn.example.cn:443?transport=tcp"]


def test_nothing_configured_gives_no_servers() -> None:
    assert turn_urls("", True, "") == []
    assert IceServers.from_media(MediaConfig())() == []
    assert current_ice_servers(None) == []


@pytest.mark.parametrize("url,scheme,port", [
    ("turn:h.example", "turn", 3478),
    ("turns:h.example", "turns", 5349),
    ("turns:h.example:443", "turns", 443),
    ("turn:10.0.0.5:3479", "turn", 3479),
])
def test_default_and_given_ports(url: str, scheme: str, port: int) -> None:
    parsed = parse_turn_url(url, "x", scheme)
    assert parsed.port == port and parsed.scheme == scheme


@pytest.mark.parametrize("url,scheme,fragment", [
    ("stun:h.example:3478", "turn", "expected turn:HOST"),
    ("turns:h.example:443", "turn", "expected turn:HOST"),
    ("turn:h.example:3478", "turns", "expected turns:HOST"),
    ("https://h.example", "turn", "expected turn:HOST"),
    ("turn:h.example:0", "turn", "not in 1..65535"),
    ("turn:h.example:70000", "turn", "not in 1..65535"),
    ("turn:h.example:34x", "turn", "not in 1..65535"),
    ("turn::3478", "turn", "not a host"),
    ("turn:h example:3478", "turn", "not a host"),
    ("turn:[::1]:3478", "turn", "IPv6 address literal"),
    ("turns:[2001:db8::1]:443", "turns", "IPv6 address literal"),
    ("turn:h.example:3478?transport=sctp", "turn", "?transport=udp or"),
    ("turn:h.example:3478?foo=bar", "turn", "?transport=udp or"),
    ("turns:h.example:443?transport=udp", "turns", "runs on TCP"),
])
def test_malformed_urls_are_refused_with_the_setting_named(url: str, scheme: str, fragment: str) -> None:
    with pytest.raises(TurnConfigError, match="media.turn") as err:
        parse_turn_url(url, "media.turn_url", scheme)
    assert fragment in str(err.value)


def test_credentials_are_coturns_rest_scheme() -> None:
    user, password = turn_credentials("s3cret", 3600, now=1_000_000.0)
    assert user == "1003600:classroom"
    expected = base64.b64encode(hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()).decode()
    assert password == expected


def test_credentials_are_made_per_call_so_they_never_go_stale() -> None:
    clock = [1_000_000.0]
    servers = IceServers(("turn:h.example:3478",), "s3cret", 600.0, clock=lambda: clock[0])
    first = servers()
    clock[0] += 86_400 * 30  # a month later: a new join gets credentials valid from now
    later = current_ice_servers(servers)
    assert first[0]["username"] == "1000600:classroom"
    assert later[0]["username"] == f"{int(clock[0] + 600)}:classroom"
    assert later[0]["urls"] == ["turn:h.example:3478"]


def test_config_from_the_environment() -> None:
    cfg = load_config(env={"CLASSROOM_MEDIA_TURN_URL": "turn:10.1.2.3:3478",
                           "CLASSROOM_MEDIA_TURN_TLS_URL": "turns:turn.example.cn:443",
                           "CLASSROOM_MEDIA_TURN_TCP": "false",
                           "CLASSROOM_MEDIA_TURN_SECRET": "abc",
                           "CLASSROOM_MEDIA_TURN_CREDENTIAL_TTL_S": "3600"})
    (server,) = IceServers.from_media(cfg.media)()
    assert server["urls"] == ["turn:10.1.2.3:3478", "turns:turn.example.cn:443"]
    assert server["username"].endswith(":classroom") and server["credential"]


def test_a_url_without_a_secret_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="turn_secret"):
        load_config(env={"CLASSROOM_MEDIA_TURN_TLS_URL": "turns:turn.example.cn:443"})


def test_a_malformed_url_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="media.turn_tls_url"):
        load_config(env={"CLASSROOM_MEDIA_TURN_TLS_URL": "turn:turn.example.cn:443",
                         "CLASSROOM_MEDIA_TURN_SECRET": "abc"})


def test_a_zero_lifetime_is_refused() -> None:
    with pytest.raises(ConfigError, match="turn_credential_ttl_s"):
        load_config(env={"CLASSROOM_MEDIA_TURN_URL": "turn:h.example", "CLASSROOM_MEDIA_TURN_SECRET": "abc",
                         "CLASSROOM_MEDIA_TURN_CREDENTIAL_TTL_S": "0"})
