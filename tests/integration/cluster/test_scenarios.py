"""One scenario suite, two routers: join, publish, subscribe, floor, spotlight, reconnect and
leave, run against one node (``LocalRouter``) and against two node processes coordinated through
a real redis-server (``RedisRouter``), with the lead's connection on node A and the remote
classrooms' on node B (their signaling relayed through Redis to the lesson's node, their media
straight to it)."""

from __future__ import annotations

import asyncio
import time

from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack

from .conftest import Deployment


async def _lead(d: Deployment, lesson: str) -> ClassroomPeer:
    lead = ClassroomPeer(d.lead_url, d.token(lesson, "lead", "lead"))
    joined = await lead.connect()
    assert joined["type"] == "joined", joined
    reply = await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(220), "teacher")])
    assert reply["type"] == "publish_answer", reply
    return lead


async def _remote(d: Deployment, lesson: str, classroom: str, publish: bool = True) -> ClassroomPeer:
    remote = ClassroomPeer(d.remote_url, d.token(lesson, classroom, "remote"))
    joined = await remote.connect()
    assert joined["type"] == "joined", joined
    if publish:
        reply = await remote.publish([(PatternTrack(160, 120), "students"), (ToneTrack(880), "students")])
        assert reply["type"] == "publish_answer", reply
    return remote


def _open_lessons(d: Deployment) -> list[int]:
    """How many lessons each node has open (its own /healthz)."""
    return [int(n.health()["lessons"]) for n in d.nodes]


def _classrooms(d: Deployment) -> list[int]:
    """The classrooms connected over the whole deployment, as each node's /healthz tells it."""
    out = []
    for n in d.nodes:
        h = n.health()
        cluster = h.get("cluster")
        out.append(int(cluster["classrooms"]) if cluster else sum(h["classrooms"].values()))
    return out


async def _floor_event(peer: ClassroomPeer, kind: str) -> dict[str, object]:
    while True:
        floor = await peer.expect("floor")
        if floor["event"]["type"] == kind:
            return floor


async def test_join_publish_subscribe(deployment: Deployment) -> None:
    lesson = "scenario-join"
    lead = await _lead(deployment, lesson)
    remote = await _remote(deployment, lesson, "r1")
    try:
        # the remote classroom decodes the lead's camera and hears the lead
        await remote.wait_frames("video", 10, classroom_id="lead")
        await remote.wait_frames("audio", 10, classroom_id="lead")
        # and the lead sees the remote classroom's camera
        await lead.wait_frames("video", 5, classroom_id="r1")
        assert remote.joined["lesson_id"] == lesson
        assert {p["classroom_id"] for p in remote.joined["participants"]} >= {"lead", "r1"}
        # exactly one node has the lesson open, whichever node the classroom came in through
        await _eventually(lambda: sorted(_open_lessons(deployment))[-1:] == [1] and sum(_open_lessons(deployment)) == 1)
        if deployment.router == "redis":
            # the lead came first, through A: A holds the lesson; B relays r1's signaling to it
            assert _open_lessons(deployment) == [1, 0]
            relayed = deployment.nodes[1].health()["cluster_counters"]
            assert relayed["relayed_to_owner"] >= 2 and relayed["relayed_to_client"] >= 2, relayed
    finally:
        await remote.close()
        await lead.close()


async def test_floor_hand_grant_audio(deployment: Deployment) -> None:
    lesson = "scenario-floor"
    lead = await _lead(deployment, lesson)
    r1 = await _remote(deployment, lesson, "r1")
    r2 = await _remote(deployment, lesson, "r2", publish=False)
    try:
        await r2.wait_frames("audio", 5, classroom_id="lead")
        assert r2.mids("audio", "r1") == []  # nobody hears r1 before it has the floor
        await r1.send({"type": "raise_hand"})
        floor = await _floor_event(lead, "hand_raised")
        assert floor["queue"] == ["r1"], floor
        await lead.send({"type": "grant_floor", "classroom_id": "r1"})
        granted = await _floor_event(r2, "floor_granted")
        assert "r1" in granted["granted"], granted  # type: ignore[operator]
        # the lead and the other remote classroom hear r1 now (across the nodes)
        await lead.wait_frames("audio", 10, classroom_id="r1")
        await r2.wait_frames("audio", 10, classroom_id="r1")
        await lead.send({"type": "revoke_floor", "classroom_id": "r1"})
        await _floor_event(r1, "floor_revoked")
    finally:
        for p in (r2, r1, lead):
            await p.close()


async def test_spotlight(deployment: Deployment) -> None:
    lesson = "scenario-spotlight"
    lead = await _lead(deployment, lesson)
    r1 = await _remote(deployment, lesson, "r1")
    r2 = await _remote(deployment, lesson, "r2", publish=False)
    try:
        await r2.wait_frames("video", 5, classroom_id="lead")
        assert r2.mids("video", "r1") == []
        await lead.send({"type": "spotlight", "classroom_id": "r1"})
        floor = await _floor_event(r2, "spotlight")
        assert floor["spotlight"] == "r1", floor
        await r2.wait_frames("video", 5, classroom_id="r1")
    finally:
        for p in (r2, r1, lead):
            await p.close()


async def test_reconnect(deployment: Deployment) -> None:
    lesson = "scenario-reconnect"
    lead = await _lead(deployment, lesson)
    r1 = await _remote(deployment, lesson, "r1", publish=False)
    try:
        await r1.wait_frames("video", 5, classroom_id="lead")
        await r1.send({"type": "raise_hand"})
        await _floor_event(lead, "hand_raised")
        # the connection drops without a leave (a network drop); the page joins again
        assert r1.ws is not None
        await r1.close()
        again = await _remote(deployment, lesson, "r1", publish=False)
        try:
            await again.wait_frames("video", 5, classroom_id="lead")
            assert "r1" in {p["classroom_id"] for p in again.joined["participants"]}
        finally:
            await again.close()
    finally:
        await lead.close()


async def test_leave(deployment: Deployment) -> None:
    lesson = "scenario-leave"
    lead = await _lead(deployment, lesson)
    r1 = await _remote(deployment, lesson, "r1", publish=False)
    try:
        await r1.wait_frames("video", 3, classroom_id="lead")
        # /healthz of every node counts the whole deployment's classrooms (aggregated over the cluster)
        await _eventually(lambda: _classrooms(deployment) == [2] * len(deployment.nodes))
        await r1.send({"type": "leave"})
        while True:
            msg = await lead.expect("participant_left")
            if msg["participant"]["classroom_id"] == "r1":
                break
        await _eventually(lambda: _classrooms(deployment) == [1] * len(deployment.nodes))
    finally:
        await r1.close()
        await lead.close()


async def _eventually(check: object, timeout: float = 6.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def test_floor_survives_the_lessons_move(deployment: Deployment) -> None:
    """Hands, floor, mute and spotlight outlive the connections of every classroom: with one node
    every classroom's connection drops and joins again (an observer keeps the room open: an empty
    room closes, and a single node keeps no floor elsewhere); with two, the node holding the
    lesson is killed (``kill -9``: every connection of the lesson drops) and the other takes the
    lesson over with the floor state the dead node left in Redis (signaling/routing/floorstate.py),
    not one the classrooms rebuild (bots do not raise their hands again)."""
    from .test_node_death import _dropped, _join

    lesson = "scenario-floor-move"
    lead = await _lead(deployment, lesson)
    observer = ClassroomPeer(deployment.lead_url, deployment.token(lesson, "inspector", "observer"))
    assert (await observer.connect())["type"] == "joined"
    r1 = await _remote(deployment, lesson, "r1", publish=False)
    r2 = await _remote(deployment, lesson, "r2", publish=False)
    peers = [lead, r1, r2, observer]
    killed = deployment.router == "redis"
    try:
        await r1.send({"type": "raise_hand"})
        await _floor_event(lead, "hand_raised")
        await r2.send({"type": "raise_hand"})
        await _floor_event(lead, "hand_raised")
        await lead.send({"type": "grant_floor", "classroom_id": "r1"})
        await _floor_event(lead, "floor_granted")
        await lead.send({"type": "mute", "classroom_id": "r2"})
        floor = await _floor_event(lead, "mute")
        before = {k: floor[k] for k in ("queue", "granted", "muted", "spotlight")}
        assert before == {"queue": ["r2"], "granted": ["r1"], "muted": ["r2"], "spotlight": "r1"}, floor
        await asyncio.sleep(0.3)  # the owner's write of the newest state (one round trip)
        if killed:
            owner = deployment.nodes[0]  # the lead came first, through A
            assert int(owner.health()["lessons"]) == 1
            owner.kill9()
            for p in peers:
                await _dropped(p, 10)
        else:
            for p in (lead, r1, r2):
                await p.close()
        # every classroom joins again — with two nodes all through B, the live one
        url = deployment.remote_url
        lead = await _join(url, deployment.token(lesson, "lead", "lead"), publish=False)
        peers.append(lead)
        # r1 is not back yet: its floor and r2's hand are there, the spotlight waits for r1
        assert {k: lead.joined["floor"][k] for k in before} == {**before, "spotlight": None}, lead.joined["floor"]
        r1 = await _join(url, deployment.token(lesson, "r1", "remote"), publish=False)
        r2 = await _join(url, deployment.token(lesson, "r2", "remote"), publish=False)
        peers += [r1, r2]
        # r1 still holds the floor (and the spotlight), r2's hand is still up and it is still muted
        assert {k: r2.joined["floor"][k] for k in before} == before, r2.joined["floor"]
        if killed:
            health = deployment.nodes[1].health()
            assert int(health["lessons"]) == 1
            assert health["cluster_counters"]["floors_restored"] >= 1, health["cluster_counters"]
        # and it is the lesson's floor, not a copy: the lead revokes, r1 is told
        await lead.send({"type": "revoke_floor", "classroom_id": "r1"})
        revoked = await _floor_event(r1, "floor_revoked")
        assert revoked["granted"] == [] and revoked["queue"] == ["r2"], revoked
    finally:
        for p in peers:
            await p.close()
        if killed and deployment.nodes[0].proc is not None and deployment.nodes[0].proc.poll() is not None:
            deployment.nodes[0].start()  # the module's other tests need both nodes
