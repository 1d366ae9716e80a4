"""TURN for classrooms behind strict firewalls: the URLs the pages get and their time-limited
credentials (coturn's ``use-auth-secret``, the "TURN REST API" scheme: the user name is
``EXPIRY:classroom``, the password ``base64(HMAC-SHA1(secret, user name))``).

Three ways through a school's firewall, each one URL in the ``ice_servers`` list a classroom
gets in ``joined`` (and in WHIP/WHEP ``Link`` headers), in this order:

- ``media.turn_url`` as it is, e.g. ``turn:turn.county.edu.cn:3478``: TURN over UDP;
- the same host and port with ``?transport=tcp`` (``media.turn_tcp``, on by default): TURN over
  TCP, for a network that blocks UDP but lets TCP 3478 out;
- ``media.turn_tls_url``, e.g. ``turns:turn.county.edu.cn:443``: TURN over TLS, for a network
  that lets only HTTPS out.

coturn reaches the SFU's own (UDP) candidates from its relay address: the SFU itself needs no
TURN (docs/network.md). Credentials are made per ``joined`` message, so a server that runs for
weeks never hands out expired ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classroom.config import MediaConfig

DEFAULT_PORTS = {"turn": 3478, "turns": 5349}
TURN_USER = "classroom"
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class TurnConfigError(ValueError):
    """A TURN setting that cannot work (the message names the setting)."""


@dataclass(frozen=True)
class TurnUrl:
    """One parsed ``turn:``/``turns:`` URI (RFC 7065)."""

    scheme: str  # "turn" or "turns"
    host: str  # a name or an IPv4 address
    port: int
    transport: str  # "" (not given), "udp" or "tcp"

    def with_transport(self, transport: str) -> str:
        return f"{self.scheme}:{self.host}:{self.port}?transport={transport}"


def parse_turn_url(url: str, what: str, scheme: str) -> TurnUrl:
    """``url`` as a ``scheme:`` URI, or :class:`TurnConfigError` naming ``what``."""
    head, sep, rest = url.partition(":")
    if not sep or head != scheme:
        raise TurnConfigError(f"{what}: expected {scheme}:HOST[:PORT], got {url!r}")
    rest, _, query = rest.partition("?")
    transport = ""
    if query:
        key, _, value = query.partition("=")
        if key != "transport" or value not in ("udp", "tcp"):
            raise TurnConfigError(f"{what}: only ?transport=udp or ?transport=tcp may follow, got {url!r}")
        transport = value
    if scheme == "turns" and transport == "udp":
        raise TurnConfigError(f"{what}: TURN over TLS runs on TCP, not ?transport=udp ({url!r})")
    host, port_text = rest, ""
    if rest.startswith("["):
        # Browsers take [IPv6]; aiortc (the room agent, the load-test bots) fails on it and
        # would never join: a host name with an AAAA record works for both.
        raise TurnConfigError(f"{what}: an IPv6 address literal is not understood by aiortc clients "
                              f"(the room agent); give a host name instead ({url!r})")
    if ":" in rest:
        host, port_text = rest.rsplit(":", 1)
    if not host or not _HOST.match(host):
        raise TurnConfigError(f"{what}: not a host name or address: {host!r} in {url!r}")
    port = DEFAULT_PORTS[scheme]
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise TurnConfigError(f"{what}: port {port_text!r} is not in 1..65535 ({url!r})")
        port = int(port_text)
    return TurnUrl(scheme, host, port, transport)


def turn_urls(turn_url: str, turn_tcp: bool, turn_tls_url: str) -> list[str]:
    """The URLs classrooms get, in the order a browser (or aiortc, which takes only the first)
    should prefer them. Raises :class:`TurnConfigError` on a malformed setting."""
    urls: list[str] = []
    if turn_url:
        parsed = parse_turn_url(turn_url, "media.turn_url", "turn")
        urls.append(turn_url)
        if turn_tcp and parsed.transport != "tcp":
            urls.append(parsed.with_transport("tcp"))
    if turn_tls_url:
        parse_turn_url(turn_tls_url, "media.turn_tls_url", "turns")
        urls.append(turn_tls_url)
    return urls


def turn_credentials(secret: str, ttl_s: float, now: float | None = None,
                     user: str = TURN_USER) -> tuple[str, str]:
    """(user name, password) valid until ``now + ttl_s`` for a TURN server sharing ``secret``."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(frozen=True)
class IceServers:
    """Callable: the ``ice_servers`` list for one ``joined`` message (or one WHIP/WHEP answer),
    with credentials made now. Empty when no TURN URL is configured."""

    urls: tuple[str, ...]
    secret: str
    ttl_s: float
    clock: Callable[[], float] = time.time

    @classmethod
    def from_media(cls, media: MediaConfig) -> IceServers:
        urls = turn_urls(media.turn_url, media.turn_tcp, media.turn_tls_url)
        if urls and not media.turn_secret:
            raise TurnConfigError("media.turn_url/turn_tls_url need media.turn_secret or media.turn_secret_file "
                                  "(the static-auth-secret coturn was given)")
        if urls and not media.turn_credential_ttl_s > 0:
            raise TurnConfigError(f"media.turn_credential_ttl_s must be > 0, got {media.turn_credential_ttl_s}")
        return cls(tuple(urls), media.turn_secret, media.turn_credential_ttl_s)

    def __call__(self) -> list[dict[str, Any]]:
        if not self.urls:
            return []
        username, password = turn_credentials(self.secret, self.ttl_s, self.clock())
        return [{"urls": list(self.urls), "username": username, "credential": password}]
