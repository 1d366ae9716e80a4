"""Datagram fuzzing at the media ports of live peers (``sfu.glue.guard_datagrams``) of a real
``classroom serve``: random bytes and mutations of real packets shaped as RTP, RTCP, STUN (with
the connection's real ufrag) and DTLS records, sent from a stranger's socket to every UDP port in
the server's SDP candidates (the publisher's and the subscriber's). The guard must count what it
drops, and the lesson's media must keep flowing the whole time.

On the node's one media port (``media.udp_port``, the default) every connection's candidates name
that port, and the demultiplexer (``sfu.glue.UdpMux``) drops a stranger's datagrams before any
connection sees them (``classroom_mux_*_total``); a second case floods it from one address, as fast
as one socket sends, with unknown ufrags, truncated STUN and DTLS, and replayed SRTP."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.harness import SEED, Live, budget, media_lesson, metrics, report, still_flowing, watch_figures
from tests.fuzz.mutate import mutate_bytes

LESSON = "fuzz-udp"
MAGIC = 0x2112A442


def candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines()
            if line.startswith("a=candidate:") and line.split()[2].lower() == "udp"}


def ufrag(sdp: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith("a=ice-ufrag:"))


def stun(rng: random.Random, username: str) -> bytes:
    """A STUN binding request with the real ufrag, bogus integrity and odd attributes."""
    attrs = b""
    user = username.encode()
    attrs += struct.pack("!HH", 0x0006, len(user)) + user + b"\0" * (-len(user) % 4)
    for _ in range(rng.randint(0, 4)):
        kind = rng.choice([0x0008, 0x8028, 0x0024, 0x8029, 0x802A, 0x0025, 0x0001, rng.randrange(65536)])
        value = rng.randbytes(rng.choice([0, 4, 8, 20, 33]))
        length = len(value) if rng.random() < 0.8 else rng.choice([0, 0xFFFF, len(value) + 4])
        attrs += struct.pack("!HH", kind, length) + value + b"\0" * (-len(value) % 4)
    mtype = rng.choice([0x0001, 0x0101, 0x0111, 0x0011, rng.randrange(0x4000)])
    length = len(attrs) if rng.random() < 0.8 else rng.randrange(65536)
    return struct.pack("!HHI", mtype, length, MAGIC) + rng.randbytes(12) + attrs


def dtls(rng: random.Random) -> bytes:
    ctype = rng.choice([20, 21, 22, 23, 24, 25, rng.randrange(20, 64)])
    body = rng.randbytes(rng.choice([0, 1, 12, 60, 300]))
    if ctype == 22 and rng.random() < 0.6:  # a handshake fragment header: ClientHello, odd lengths
        body = struct.pack("!B", rng.choice([1, 2, 11, 16])) + rng.randbytes(3) + rng.randbytes(2) \
            + rng.randbytes(6) + body
    length = len(body) if rng.random() < 0.7 else rng.randrange(65536)
    return struct.pack("!BHHH", ctype, rng.choice([0xFEFD, 0xFEFF, 0x0303]), rng.randrange(4), 0) \
        + rng.randbytes(4) + struct.pack("!H", length) + body


def rtp(rng: random.Random) -> bytes:
    b0 = 0x80 | rng.choice([0, 0x10, 0x20, 0x0F, rng.randrange(64)])
    pt = rng.choice([96, 97, 111, 0, 127, rng.randrange(128)]) | rng.choice([0, 0x80])
    return struct.pack("!BBHII", b0, pt, rng.randrange(65536), rng.randrange(2**32), rng.randrange(2**32)) \
        + rng.randbytes(rng.choice([0, 1, 10, 100, 1200, 1400]))


def rtcp(rng: random.Random) -> bytes:
    pt = rng.choice([200, 201, 202, 203, 204, 205, 206, 207])
    count = rng.randrange(32)
    body = rng.randbytes(rng.choice([0, 4, 8, 24, 100]))
    length = len(body) // 4 + 1 if rng.random() < 0.6 else rng.randrange(65536)
    return struct.pack("!BBHI", 0x80 | count, pt, length, rng.randrange(2**32)) + body


def datagram(rng: random.Random, ufrags: list[str], real: list[bytes]) -> bytes:
    op = rng.randrange(8)
    if op == 0:
        return rng.randbytes(rng.choice([0, 1, 2, 3, 11, 12, 19, 20, 100, 1500]))
    if op == 1:
        return stun(rng, f"{rng.choice(ufrags)}:{rng.choice(['x', 'abcd', rng.choice(ufrags)])}")
    if op == 2:
        return dtls(rng)
    if op == 3:
        return rtp(rng)
    if op == 4:
        return rtcp(rng)
    if op == 5 and real:
        return rng.choice(real)  # a real SRTP packet replayed from a stranger
    base = rng.choice(real) if real and rng.random() < 0.5 else rng.choice([rtp, rtcp, dtls])(rng)
    return mutate_bytes(rng, base)


def keep_srtp_samples(sub: Any, limit: int) -> list[bytes]:
    """The first ``limit`` SRTP datagrams the subscriber bot receives (it still counts them all)."""
    real: list[bytes] = []
    original = sub._on_srtp

    def keep(data: bytes) -> None:
        if len(real) < limit:
            real.append(bytes(data))
        original(data)

    sub._on_srtp = keep
    return real


@pytest.mark.timeout(240)
async def test_datagrams_at_media_ports(live: Live, record_property: Callable[[str, object], None]) -> None:
    seconds = budget(8.0)
    pub, sub = await media_lesson(live, LESSON)
    real = keep_srtp_samples(sub, 64)  # samples of the real SRTP the SFU sends, to replay and mutate
    try:
        assert pub.pc is not None and pub.pc.remoteDescription is not None
        assert sub.pc is not None and sub.pc.remoteDescription is not None
        pub_sdp, sub_sdp = pub.pc.remoteDescription.sdp, sub.pc.remoteDescription.sdp
        publisher_ports = sorted(candidate_ports(pub_sdp))
        ports = publisher_ports + sorted(candidate_ports(sub_sdp))
        assert publisher_ports and len(ports) > len(publisher_ports)
        ufrags = [ufrag(pub_sdp), ufrag(sub_sdp)]
        rng = random.Random(SEED)
        await asyncio.sleep(0.5)  # a few real packets to mutate
        shared = len(set(ports)) == 1  # the node's one media port: the demultiplexer drops strangers first
        before = metrics(live.base_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sent = to_publisher = not_stun = 0
        started = time.monotonic()
        end = started + seconds
        checked = started
        try:
            while time.monotonic() < end:
                for _ in range(20):  # ~2000 datagrams/s: a stranger's flood, not a kernel benchmark
                    data = datagram(rng, ufrags, real)
                    port = rng.choice(ports)
                    try:
                        sock.sendto(data, ("127.0.0.1", port))
                    except OSError:
                        continue
                    sent += 1
                    if port in publisher_ports:
                        to_publisher += 1
                        if not (data and data[0] < 4):
                            not_stun += 1
                await asyncio.sleep(0.01)
                if time.monotonic() - checked > 3:  # media keeps flowing throughout
                    checked = time.monotonic()
                    await still_flowing(sub, packets=10, timeout=5)
        finally:
            sock.close()
        elapsed = time.monotonic() - started
        await still_flowing(sub)
        await asyncio.sleep(1.2)  # the counters reach /metrics once a second
        after = metrics(live.base_url)

        def delta(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        counted = delta("classroom_bad_datagrams_total") + delta("classroom_mux_unknown_address_total")
        res = live.check()
        report(record_property, "datagrams", sent, elapsed, to_publisher=to_publisher, counted_by_guard=int(counted),
               shared_port=shared, **watch_figures(res))
        # Everything that is not STUN reaching the publisher's port comes from a stranger: dropped and counted
        # (a few may be lost in the kernel's socket buffer). With a socket per connection, the subscriber's is
        # connect()-ed: the kernel drops strangers' datagrams there before anyone counts them.
        assert counted >= 0.9 * not_stun, (counted, not_stun)
        if shared:  # STUN with the real ufrags but no valid integrity, or a stranger's ufrag: dropped, counted
            assert delta("classroom_mux_bad_stun_total") + delta("classroom_mux_unknown_ufrag_total") > 0
    finally:
        await sub.stop()
        await pub.stop()


def kernel_drops(port: int, address: str = "127.0.0.1") -> int:
    """Datagrams the kernel dropped at the IPv4 UDP socket bound to ``address:port`` (its receive
    queue was full: the ``drops`` column of /proc/net/udp, per socket, this network namespace)."""
    want = f"{socket.htonl(int.from_bytes(socket.inet_aton(address), 'big')):08X}:{port:04X}"
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 12 and fields[1] == want:
            total += int(fields[12])
    return total


@pytest.mark.timeout(120)
async def test_a_flood_at_the_shared_media_port_stops_no_ones_media(
        live: Live, record_property: Callable[[str, object], None]) -> None:
    """One address floods the node's one media port as fast as it can send (unknown ufrags,
    the real ufrags with bogus integrity, truncated STUN and DTLS, replayed SRTP): every datagram
    is dropped and counted by the demultiplexer, and the lesson's media keeps flowing."""
    pub, sub = await media_lesson(live, "fuzz-flood")
    real = keep_srtp_samples(sub, 16)
    try:
        assert pub.pc is not None and pub.pc.remoteDescription is not None
        assert sub.pc is not None and sub.pc.remoteDescription is not None
        ports = candidate_ports(pub.pc.remoteDescription.sdp) | candidate_ports(sub.pc.remoteDescription.sdp)
        assert len(ports) == 1, ports  # the node's one media port (media.udp_port)
        port = ports.pop()
        ufrags = [ufrag(pub.pc.remoteDescription.sdp), ufrag(sub.pc.remoteDescription.sdp)]
        rng = random.Random(SEED)
        await asyncio.sleep(0.5)
        kinds = [stun(rng, "nobody:x"), stun(rng, f"{ufrags[0]}:x"), stun(rng, f"{ufrags[1]}:y"),
                 b"\x00\x01\x00", b"\x00\x01\x00\x08" + struct.pack("!I", MAGIC) + bytes(12),
                 b"\x16\xfe\xfd", dtls(rng), *real[:8]]
        before = metrics(live.base_url)
        drops_before = kernel_drops(port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sent = 0
        started = time.monotonic()
        seconds = budget(4.0)
        try:
            while time.monotonic() - started < seconds:
                for _ in range(500):  # as fast as one socket sends, yielding now and then
                    try:
                        sock.sendto(kinds[sent % len(kinds)], ("127.0.0.1", port))
                    except (BlockingIOError, InterruptedError):
                        break
                    sent += 1
                await asyncio.sleep(0)
        finally:
            sock.close()
        elapsed = time.monotonic() - started
        await still_flowing(sub)  # nobody's media stopped
        await asyncio.sleep(1.2)
        after = metrics(live.base_url)
        counted = sum(after.get(f"classroom_mux_{n}_total", 0.0) - before.get(f"classroom_mux_{n}_total", 0.0)
                      for n in ("unknown_ufrag", "unknown_address", "bad_stun"))
        dropped_by_kernel = kernel_drops(port) - drops_before
        res = live.check()
        report(record_property, "flood", sent, elapsed, counted_by_mux=int(counted),
               dropped_by_kernel=dropped_by_kernel, **watch_figures(res))
        # every datagram is accounted for: read and counted by the demultiplexer, or dropped by the
        # kernel at the full socket (how many of each depends on the CPU the server gets: under
        # load on 2 cores the port read 37-55 % of a loopback flood, the kernel dropped the rest)
        assert counted + dropped_by_kernel >= 0.95 * sent, (counted, dropped_by_kernel, sent)
        assert counted >= 0.2 * sent, (counted, sent)  # the port reads in bulk, it does not stall
    finally:
        await sub.stop()
        await pub.stop()
