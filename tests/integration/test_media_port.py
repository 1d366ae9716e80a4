"""The node's one media port (``media.udp_port``) with real aiortc peers: a ``classroom serve``
subprocess, a lead and three remote classrooms (the load-test bots: real ICE, DTLS, SRTP). The
server process holds exactly one UDP socket for all their media (counted from /proc/PID/fd and
/proc/PID/net/udp), every candidate it offers carries that port, and media flows; with
``media.udp_mux: false`` it holds a socket per connection, as before."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from loadtest.bots import PublisherBot, SendLog, SubscriberBot
from loadtest.media import StreamSpec, load_stream
from loadtest.serverproc import start_server

SMALL = StreamSpec(width=320, height=240, video_bitrate=300_000, seconds=2.0)


def udp_sockets(pid: int) -> list[tuple[str, int]]:
    """The (local address, port) of every UDP socket the process ``pid`` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    out = []
    for table in ("udp", "udp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[9] in inodes:
                    host, port = fields[1].split(":")
                    out.append((host, int(port, 16)))
    return out


def candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


@pytest.mark.parametrize("mux", [True, False], ids=["one-port", "per-connection"])
async def test_a_lesson_with_three_remotes_uses_one_udp_socket(mux: bool) -> None:
    env = {**os.environ, "CLASSROOM_MEDIA_UDP_MUX": "true" if mux else "false"}
    server = start_server(env=env)
    stream = await asyncio.to_thread(load_stream, SMALL)
    log = SendLog()
    pub = PublisherBot(server.base_url, server.signer.issue("port", "lead", "lead"), stream, send_log=log)
    subs = [SubscriberBot(server.base_url, server.signer.issue("port", f"remote-{i}", "remote"), sample_every=2,
                          send_log=log) for i in range(3)]
    try:
        await pub.start()
        await asyncio.gather(*(s.start() for s in subs))
        await asyncio.gather(*(s.wait_receiving(packets=20, timeout=20) for s in subs))
        sockets = udp_sockets(server.pid)
        offered = set()
        for bot in (pub, *subs):
            assert bot.pc is not None and bot.pc.remoteDescription is not None
            offered |= candidate_ports(bot.pc.remoteDescription.sdp)
        if mux:
            assert len(sockets) == 1, sockets  # one socket for four connections, both directions
            assert offered == {sockets[0][1]}
            assert any("media for every classroom on 127.0.0.1:" in line for line in server.lines)
        else:
            assert len(sockets) >= 4 and len(offered) >= 4, (sockets, offered)  # (+ bundled m-lines until the answer)
        for s in subs:
            assert s.stats.mismatched == 0 and s.stats.srtp_errors == 0 and s.stats.verified > 0, s.stats
    finally:
        await asyncio.gather(*(s.stop() for s in subs), return_exceptions=True)
        await pub.stop()
        server.stop()
