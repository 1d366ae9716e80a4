"""signaling/whip.py's pure parts: trickle-ICE fragments (RFC 8840) and Link headers (RFC 9725)."""

from __future__ import annotations

from signaling.whip import link_headers, parse_fragment


def test_fragment_with_ufrag_mid_and_candidates() -> None:
    frag = parse_fragment("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
                          "a=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host\r\n"
                          "a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host\r\n"
                          "a=end-of-candidates\r\n")
    assert frag.ufrag == "EsAw" and frag.pwd == "P2uYro0UCOQ4zxjKXaWCBui1" and frag.end
    assert [c["sdpMid"] for c in frag.candidates] == ["0", "0"]
    assert frag.candidates[0]["candidate"].startswith("candidate:1387637174 1 udp")


def test_fragment_without_mid_uses_the_m_line_index() -> None:
    frag = parse_fragment("a=candidate:1 1 udp 1 192.0.2.1 9 typ host\n")
    assert frag.ufrag == "" and frag.candidates == [
        {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": None, "sdpMLineIndex": 0}]


def test_empty_fragment() -> None:
    frag = parse_fragment("")
    assert frag.ufrag == "" and frag.pwd == "" and frag.candidates == [] and not frag.end


def test_link_headers() -> None:
    servers = [{"urls": ["turn:192.0.2.1:3478", "turn:192.0.2.1:3478?transport=tcp"], "username": "1:c",
                "credential": "pw"}, {"urls": "stun:192.0.2.9"}]
    assert link_headers(servers) == [
        '<turn:192.0.2.1:3478>; rel="ice-server"; username="1:c"; credential="pw"; credential-type="password"',
        '<turn:192.0.2.1:3478?transport=tcp>; rel="ice-server"; username="1:c"; credential="pw"; '
        'credential-type="password"',
        '<stun:192.0.2.9>; rel="ice-server"',
    ]
    assert link_headers([]) == []
