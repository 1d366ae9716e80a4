"""ICE against a peer that only advertises ``.local`` (mDNS) candidates, as Firefox does by
default: two real aioice agents on loopback, the "server" one with ``sfu.glue``'s robust mDNS
path installed (``configure_ice``), the "browser" one whose candidates reach the server only
under random ``<uuid>.local`` names.

* A name nobody answers: the connection still succeeds, through the peer-reflexive candidate the
  server learns from the browser's own checks, in either ICE role, even when end-of-candidates
  is signalled before the browser's first check arrives (aioice alone fails at once there).
  Adding the candidate does not wait for the lookup.
* A name that is answered late (the browser's responder publishes it only after the first query
  went unanswered): a later attempt of the lookup resolves it; a second connection gets it from
  the cache without a query.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid

import aioice
import aioice.ice
import pytest

from sfu import glue


@pytest.fixture(autouse=True)
def loopback_ice() -> None:
    glue.configure_ice(["127.0.0.1"])


async def agents(server_controlling: bool) -> tuple[aioice.Connection, aioice.Connection]:
    server = aioice.Connection(ice_controlling=server_controlling)
    browser = aioice.Connection(ice_controlling=not server_controlling)
    await asyncio.gather(server.gather_candidates(), browser.gather_candidates())
    server.remote_username, server.remote_password = browser.local_username, browser.local_password
    browser.remote_username, browser.remote_password = server.local_username, server.local_password
    return server, browser


def masked(candidate: aioice.Candidate, name: str) -> aioice.Candidate:
    c = copy.copy(candidate)
    c.host = name
    return c


async def close(*conns: aioice.Connection) -> None:
    for c in conns:
        await c.close()


@pytest.mark.parametrize("server_controlling", [False, True], ids=["server-controlled", "server-controlling"])
async def test_a_name_that_never_resolves_connects_through_peer_reflexive(server_controlling: bool) -> None:
    server, browser = await agents(server_controlling)
    before = glue.IceStats(**vars(glue.ICE_STATS))
    try:
        t0 = time.monotonic()
        for c in browser.local_candidates:
            await server.add_remote_candidate(masked(c, f"{uuid.uuid4()}.local"))
        await server.add_remote_candidate(None)  # end-of-candidates, before any check arrived
        assert time.monotonic() - t0 < 0.1, "adding a .local candidate waited for its lookup"
        for c in server.local_candidates:
            await browser.add_remote_candidate(c)
        await browser.add_remote_candidate(None)
        server_task = asyncio.ensure_future(server.connect())
        await asyncio.sleep(0.3)  # the browser's checks come a little later
        await asyncio.wait_for(asyncio.gather(server_task, browser.connect()), 15)

        pair = server._nominated[1]
        assert pair.remote_candidate.type == "prflx"
        assert pair.remote_addr == (browser.local_candidates[0].host, browser.local_candidates[0].port)
        await browser.send(b"over the peer-reflexive pair")
        assert await asyncio.wait_for(server.recv(), 5) == b"over the peer-reflexive pair"
        await server.send(b"and back")
        assert await asyncio.wait_for(browser.recv(), 5) == b"and back"
        assert glue.ICE_STATS.prflx_learned > before.prflx_learned
        assert glue.ICE_STATS.mdns_candidates == before.mdns_candidates + len(browser.local_candidates)
    finally:
        await close(server, browser)


async def test_without_any_check_from_the_peer_the_connection_fails_after_the_grace() -> None:
    server, browser = await agents(server_controlling=False)
    old = glue.PRFLX_GRACE_S
    glue.PRFLX_GRACE_S = 0.5
    try:
        await server.add_remote_candidate(masked(browser.local_candidates[0], f"{uuid.uuid4()}.local"))
        await server.add_remote_candidate(None)
        t0 = time.monotonic()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(server.connect(), 15)  # the browser never checks: no hang
        # the lookup's budget (5.25 s) or the grace, whichever ends later
        assert time.monotonic() - t0 < sum(glue.MDNS_ATTEMPTS_S) + 2
    finally:
        glue.PRFLX_GRACE_S = old
        await close(server, browser)


async def test_a_late_answer_is_found_by_a_retry_and_then_cached() -> None:
    name = f"{uuid.uuid4()}.local"
    owner = object()
    responder = await aioice.ice.get_or_create_mdns_protocol(owner)  # the "browser's" responder
    server, browser = await agents(server_controlling=False)
    before = glue.IceStats(**vars(glue.ICE_STATS))
    try:
        await server.add_remote_candidate(masked(browser.local_candidates[0], name))
        await asyncio.sleep(glue.MDNS_ATTEMPTS_S[0] + 0.1)  # the first query went unanswered
        await responder.publish(name, browser.local_candidates[0].host)
        deadline = time.monotonic() + sum(glue.MDNS_ATTEMPTS_S)
        while not any(c.host == name and c.type == "host" for c in server.remote_candidates):
            assert time.monotonic() < deadline, "the late answer was never found"
            await asyncio.sleep(0.05)
        assert glue.ICE_STATS.mdns_resolved == before.mdns_resolved + 1
        assert glue.ICE_STATS.mdns_queries >= before.mdns_queries + 2  # it took a retry
        assert glue.mdns_cache_get(name) == browser.local_candidates[0].host
        for c in server.local_candidates:
            await browser.add_remote_candidate(c)
        await asyncio.wait_for(asyncio.gather(server.connect(), browser.connect()), 15)
        assert server._nominated[1].remote_candidate.type == "host"  # the resolved name, not prflx

        # a second connection of the same browser: from the cache, no query
        again, browser2 = await agents(server_controlling=False)
        queries = glue.ICE_STATS.mdns_queries
        await again.add_remote_candidate(masked(browser2.local_candidates[0], name))
        assert glue.ICE_STATS.mdns_queries == queries
        assert glue.ICE_STATS.mdns_cache_hits == before.mdns_cache_hits + 1
        assert [c.host for c in again.remote_candidates] == [name]
        await close(again, browser2)
    finally:
        await close(server, browser)
        await aioice.ice.unref_mdns_protocol(owner)


def test_cache_expiry_and_bound() -> None:
    glue.mdns_cache_put("A.local", "192.0.2.1", now=100.0)
    assert glue.mdns_cache_get("a.local", now=100.0 + glue.MDNS_CACHE_TTL_S - 1) == "192.0.2.1"
    assert glue.mdns_cache_get("a.local", now=100.0 + glue.MDNS_CACHE_TTL_S) is None
    assert glue.mdns_cache_get("a.local", now=0.0) is None  # expired entries are dropped


async def test_too_many_lookups_at_once_are_refused_not_queued() -> None:
    old = glue.MDNS_MAX_LOOKUPS
    glue.MDNS_MAX_LOOKUPS = 0
    before = glue.ICE_STATS.mdns_unresolved
    try:
        t0 = time.monotonic()
        assert await glue.resolve_mdns(f"{uuid.uuid4()}.local") is None
        assert time.monotonic() - t0 < 0.1  # no query, no wait
        assert glue.ICE_STATS.mdns_unresolved == before + 1
    finally:
        glue.MDNS_MAX_LOOKUPS = old
