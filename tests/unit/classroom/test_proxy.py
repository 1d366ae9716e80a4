"""classroom/proxy.py: only what the reverse proxy appended is believed."""

from __future__ import annotations

from multidict import CIMultiDict

from classroom.proxy import forwarded_changes


def changes(**headers: str) -> dict[str, str]:
    return forwarded_changes(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))


def test_last_hop_is_the_client() -> None:
    # a client-sent X-Forwarded-For is extended by the proxy: only the last entry is the proxy's word
    assert changes(X_Forwarded_For="6.6.6.6, 192.0.2.7") == {"remote": "192.0.2.7"}
    assert changes(X_Forwarded_For="192.0.2.7:5123") == {"remote": "192.0.2.7"}
    assert changes(X_Forwarded_For="[2001:db8::7]:5123") == {"remote": "2001:db8::7"}
    assert changes(X_Forwarded_For="2001:db8::7") == {"remote": "2001:db8::7"}
    assert changes(X_Forwarded_For="unknown") == {}


def test_proto_and_host() -> None:
    assert changes(X_Forwarded_Proto="HTTPS", X_Forwarded_Host="classroom.example.cn") == {
        "scheme": "https", "host": "classroom.example.cn"}
    assert changes(X_Forwarded_Proto="gopher") == {}
    assert changes(X_Forwarded_Host="a.example.cn, b.example.cn") == {}
    assert changes(X_Forwarded_Host="evil/host") == {}
    assert changes() == {}
