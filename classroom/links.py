"""Where classrooms reach this server: the base URL that every printed link (the demo lesson's,
``demo-links.txt``) and every join link the API returns starts with.

``server.public_url`` wins when set (a reverse proxy, a DNS name). Otherwise the URL is derived
from the bind address, the port and whether the server speaks TLS: a specific address is used as
it is; a wildcard bind (``0.0.0.0``, ``::``) uses the machine's LAN address (the first
non-loopback ``media.ice_addresses`` entry, else the address of the default route, else the host
name's addresses), never ``0.0.0.0`` itself, which no browser can open.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def is_wildcard(host: str) -> bool:
    return host.strip() in WILDCARDS


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1 (a page there is a secure context even over http)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _usable(address: str) -> bool:
    return bool(address) and not is_wildcard(address) and not is_loopback(address)


def route_address() -> str | None:
    """The source address of the default route (a UDP ``connect`` sends nothing), or None when
    the machine has no route out (e.g. an isolated school network without a default gateway)."""
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                address = str(s.getsockname()[0])
        except OSError:
            continue
        if _usable(address):
            return address
    return None


def hostname_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if _usable(address) and address not in out:
            out.append(address)
    return out


def detected_addresses() -> list[str]:
    """This machine's non-loopback addresses that are cheap to learn without shelling out."""
    out: list[str] = []
    route = route_address()
    if route:
        out.append(route)
    out += [a for a in hostname_addresses() if a not in out]
    return out


def lan_address(ice_addresses: list[str], detected: list[str]) -> str | None:
    for address in [*ice_addresses, *detected]:
        if _usable(address):
            return address
    return None


def host_for_url(host: str) -> str:
    host = host.strip()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def derive_base_url(
    public_url: str,
    host: str,
    port: int,
    secure: bool,
    ice_addresses: list[str] | None = None,
    detected: list[str] | None = None,
) -> str:
    """The base URL for links (no trailing slash). ``detected`` defaults to
    :func:`detected_addresses`; tests pass it explicitly."""
    if public_url.strip():
        return public_url.strip().rstrip("/")
    if is_wildcard(host):
        found = lan_address(ice_addresses or [], detected_addresses() if detected is None else detected)
        host = found or "127.0.0.1"
    scheme = "https" if secure else "http"
    default_port = 443 if secure else 80
    netloc = host_for_url(host) if port == default_port else f"{host_for_url(host)}:{port}"
    return f"{scheme}://{netloc}"


def url_host(url: str) -> str:
    """The host part of a URL (no port, no brackets); empty when there is none."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
