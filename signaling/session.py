"""One classroom's WebSocket: the classroom protocol (docs/protocol.md), checked against the
token's role on every message. A bad message gets an ``error`` reply and is counted; it never
closes the connection or disturbs the lesson."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiortc.sdp import SessionDescription

from sfu.peer import PeerSettings, PublisherPeer, SdpError, SubscriberPeer
from sfu.sdpshape import DEFAULT_SHAPE, SdpShape, SdpShapeError, answer_shape, check_sdp_shape
from sfu.stats import SIGNALING
from sfu.uptrack import UpTrack
from signaling import logcontext, permissions
from signaling.bucket import TokenBucket
from signaling.floor import Floor, FloorError, FloorEvent
from signaling.ice_servers import IceServerSource, current_ice_servers
from signaling.notes import DEFAULT_RUBRIC, Note, NoteError, check_note, moment_at_ms, new_note_id, timeline_ms
from signaling.protocol import Message, ProtocolError, error_message, parse_message, server_message
from signaling.room import Participant, Room, now_ms
from signaling.routing.base import ClusterUnavailable, RelayTo, Router
from signaling.routing.relay import RelayedSocket
from signaling.tokens import TokenClaims, TokenError, TokenSigner

log = logging.getLogger(__name__)
_ids = itertools.count(1)

FloorAct = Callable[[Floor, str, Any, int], list[FloorEvent]]
# message type -> (permission checked against the role, what it does to the floor)
FLOOR_ACTIONS: dict[str, tuple[str, FloorAct]] = {
    "raise_hand": ("raise_hand", lambda f, me, _, t: f.raise_hand(me, t)),
    "lower_hand": ("lower_hand", lambda f, me, _, t: f.lower_hand(me, t)),
    "grant_floor": ("grant_floor", lambda f, me, cid, t: f.grant(me, str(cid), t)),
    "revoke_floor": ("revoke_floor", lambda f, me, cid, t: f.revoke(me, str(cid), t)),
    "mute": ("mute", lambda f, me, cid, t: f.mute(me, str(cid), t)),
    "unmute": ("unmute", lambda f, me, cid, t: f.unmute(me, str(cid), t)),
    "spotlight": ("spotlight", lambda f, me, cid, t: f.spotlight(me, cid, t)),
}
NEGOTIATION_TIMEOUT_S = 10.0
# Observation notes per connection: a burst of this many, then one a second.
NOTE_BURST, NOTE_PER_S = 20, 1.0
ICE_TIMEOUT_S = 5.0
# The fields of an ``ice`` message's candidate object and the types each may have.
CANDIDATE_FIELDS: dict[str, tuple[type, ...]] = {
    "candidate": (str,),
    "sdpMid": (str, type(None)),
    "sdpMLineIndex": (int, type(None)),
    "usernameFragment": (str, type(None)),
}


def check_candidate(candidate: Any) -> None:
    """Refuse an ``ice`` candidate whose fields have the wrong types (``bad_field``)."""
    if candidate is None:
        return
    for name, types in CANDIDATE_FIELDS.items():
        if name not in candidate:
            continue
        value = candidate[name]
        if not isinstance(value, types) or isinstance(value, bool):
            names = "/".join("null" if t is type(None) else t.__name__ for t in types)
            raise ProtocolError("bad_field", f"ice: candidate.{name} must be {names}")
    if isinstance(candidate.get("sdpMLineIndex"), int) and not 0 <= candidate["sdpMLineIndex"] < 1024:
        raise ProtocolError("bad_field", "ice: candidate.sdpMLineIndex is out of range")


# a publish answer slower than this is logged (INFO)
SLOW_ANSWER_S = 0.25


class ClassroomSocket(web.WebSocketResponse):
    """A WebSocket that answers a frame over its transport limit with ``error
    message_too_large`` before aiohttp closes it with 1009 (frames between the protocol's limit
    and the transport's get that error from the session and the connection stays)."""

    too_large_reply: dict[str, Any] | None = None

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        reply, self.too_large_reply = self.too_large_reply, None
        if code == WSCloseCode.MESSAGE_TOO_BIG and reply is not None and not self.closed:
            SIGNALING.error("message_too_large")
            log.info("signaling error message_too_large: a frame over the transport limit; closing")
            try:
                await self.send_json(reply)
            except (ConnectionError, RuntimeError):
                pass
        return await super().close(code=code, message=message, drain=drain)

    def stop_heartbeat(self) -> None:
        """Cancel and drop the heartbeat timer once the session is over. aiohttp leaves it
        scheduled on some close paths: the loop then holds the whole closed connection for up to
        the heartbeat interval, and the timer's bound method keeps it in a cycle (ws -> timer ->
        ws) that only a full garbage collection frees (found with tools/loopprof)."""
        cancel = getattr(self, "_cancel_heartbeat", None)
        if callable(cancel):
            cancel()


def bounded(sdp: str, shape: SdpShape = DEFAULT_SHAPE) -> None:
    """``sdp_invalid`` before anything parses SDP beyond the bounds of sfu/sdpshape.py (one
    32 KB offer took aiortc's parser 3.2 s of the event loop)."""
    try:
        check_sdp_shape(sdp, shape)
    except SdpShapeError as exc:
        raise SdpError(str(exc)) from None


class Session:
    def __init__(
        self,
        ws: web.WebSocketResponse | RelayedSocket,
        router: Router,
        signer: TokenSigner,
        settings: PeerSettings,
        ice_servers: IceServerSource,
        max_message_bytes: int,
        join_timeout_s: float = 0.0,
        on_joined: Callable[[], None] | None = None,
        publish_bucket: TokenBucket | None = None,
    ) -> None:
        self.ws = ws
        self.publish_bucket = publish_bucket  # signaling/limits.py: publish_burst, publish_per_s
        self.router = router
        self.signer = signer
        self.settings = settings
        self.ice_servers = ice_servers
        self.max_message_bytes = max_message_bytes
        self.participant: Participant | None = None
        self.room: Room | None = None
        self.claims: TokenClaims | None = None
        self.token_time = time.monotonic()
        self._send_lock = asyncio.Lock()
        self._closing = False
        self.join_timeout_s = join_timeout_s
        self._on_joined = on_joined
        self._join_deadline: asyncio.TimerHandle | None = None
        self.join_timed_out = False
        self.note_bucket = TokenBucket(NOTE_BURST, NOTE_PER_S)
        if isinstance(ws, ClassroomSocket):
            ws.too_large_reply = error_message(
                "message_too_large", f"messages are limited to {max_message_bytes} bytes; the frame was "
                "over the connection's limit, so the connection is closed")  # fmt: skip

    # -- transport ----------------------------------------------------------------------------

    async def send(self, msg: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            try:
                await self.ws.send_json(msg)
                SIGNALING.messages_out += 1
            except (ConnectionError, RuntimeError):
                pass

    async def error(self, code: str, message: str, re: int | None = None) -> None:
        SIGNALING.error(code)
        log.info("signaling error %s: %s", code, message)
        await self.send(error_message(code, message, re))

    async def kick(self, reason: str, code: str = "replaced", notice: dict[str, Any] | None = None) -> None:
        """Close this session: ``replaced`` (another session of the same classroom took over;
        the page stays away) or ``shutting_down`` (the page reconnects by itself); with
        ``notice``, that message is sent instead of an ``error`` (``lesson_ended``)."""
        self._closing = True
        await self.send(notice if notice is not None else server_message("error", code=code, message=reason))
        await self.ws.close()

    def _join_expired(self) -> None:
        self._join_deadline = None
        if self.participant is None and not self.ws.closed:
            self.join_timed_out = True
            asyncio.get_running_loop().create_task(self._close_unjoined())

    async def _close_unjoined(self) -> None:
        await self.error("join_timeout", f"no join within {self.join_timeout_s:g} s of connecting; closing")
        await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"join timeout")

    async def run(self) -> None:
        if self.join_timeout_s > 0:
            self._join_deadline = asyncio.get_running_loop().call_later(self.join_timeout_s, self._join_expired)
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    SIGNALING.messages_in += 1
                    try:
                        await self._handle_text(msg.data)
                    except RelayTo as to:
                        # another node holds the lesson: from here on this connection is a relay
                        # of its messages to that node (the join first) and back
                        await self._relay(to, msg.data)
                        break
                elif msg.type == WSMsgType.BINARY:
                    await self.error("binary_not_supported", "send JSON text frames")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            if self._join_deadline is not None:
                self._join_deadline.cancel()
            await self._leave(graceful=False)
            logcontext.clear()

    async def _relay(self, to: RelayTo, join_text: str) -> None:
        if self._join_deadline is not None:
            self._join_deadline.cancel()
            self._join_deadline = None
        if self._on_joined is not None:
            self._on_joined()  # the token checked out: no longer an unauthenticated connection
        if isinstance(self.ws, web.WebSocketResponse):
            await self.router.relay(self.ws, to.node_id, to.lesson_id, join_text)

    async def _handle_text(self, text: str) -> None:
        try:
            message = parse_message(text, self.max_message_bytes)
        except ProtocolError as exc:
            await self.error(exc.code, str(exc), exc.ref)
            return
        try:
            await self._dispatch(message)
        except RelayTo:
            raise
        except ClusterUnavailable as exc:
            # the page reconnects by itself when the connection closes, and so retries the join
            await self.error(exc.code, str(exc), message.id)
            await self.ws.close()
        except ProtocolError as exc:
            await self.error(exc.code, str(exc), message.id)
        except TokenError as exc:
            await self.error(exc.code, str(exc), message.id)
        except permissions.PermissionDenied as exc:
            await self.error("forbidden", exc.message, message.id)
        except FloorError as exc:
            await self.error(exc.code, exc.message, message.id)
        except SdpError as exc:
            await self.error("sdp_invalid", str(exc), message.id)
        except Exception:
            log.exception("internal error handling %s", message.type)
            await self.error("internal", f"internal error handling {message.type}", message.id)

    # -- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, m: Message) -> None:
        if m.type == "ping":
            await self.send(server_message("pong", re=m.id))
            return
        if m.type == "join":
            await self._join(m)
            return
        p, room = self.participant, self.room
        if p is None or room is None:
            raise ProtocolError("not_joined", f"{m.type}: join the lesson first")
        if m.type == "leave":
            await self._leave(graceful=True)
            await self.ws.close()
        elif m.type == "publish":
            self._check_publish_rate(m)
            await self._publish(m, p, room)
        elif m.type == "end_lesson":
            await self._end_lesson(m, p, room)
        elif m.type == "note":
            await self._note(m, p, room)
        elif m.type == "subscribe_answer":
            if p.subscriber is None:
                raise ProtocolError("bad_field", "subscribe_answer: no subscribe offer was sent")
            pc = p.subscriber.pc
            offer = pc.localDescription.sdp if pc is not None and pc.localDescription is not None else None
            bounded(m.data["sdp"], answer_shape(offer))  # as many m-lines as our offer has
            try:
                await asyncio.wait_for(p.subscriber.on_answer(m.data["sdp"]), NEGOTIATION_TIMEOUT_S)
            except TimeoutError:
                raise SdpError("the answer could not be applied in time") from None
        elif m.type == "ice":
            cand = m.data.get("candidate")
            check_candidate(cand)
            peer: PublisherPeer | SubscriberPeer | None
            if m.data["target"] == "publish":
                peer = p.publisher
                if peer is None:
                    raise ProtocolError("bad_field", "ice: nothing is being published")
            else:
                peer = p.subscriber
                if peer is None:
                    raise ProtocolError("bad_field", "ice: no subscribe connection")
            try:
                await asyncio.wait_for(peer.add_candidate(cand), ICE_TIMEOUT_S)
            except TimeoutError:
                raise SdpError("the ICE candidate could not be applied in time") from None
            except (SdpError, ProtocolError):
                raise
            except Exception as exc:  # aiortc refuses some candidates with assorted errors
                raise SdpError(f"the ICE candidate could not be applied: {exc}") from exc
        else:
            await self._floor_action(m, p, room)

    async def _join(self, m: Message) -> None:
        if self.participant is not None:
            raise ProtocolError("already_joined", "this connection has already joined")
        claims = self.signer.verify(m.data.get("token"))
        self.router.admission.admit(claims)
        if claims.role == "recorder":  # only the recorder process this server launched
            self.router.recorders.admit(
                claims, self.ws.get_extra_info("peername"), self.ws.get_extra_info("sockname")
            )
        owner = await self.router.place(claims.lesson_id)
        if owner is not None:
            raise RelayTo(owner, claims.lesson_id)
        room = self.router.room(claims.lesson_id, claims.lesson_title)
        if room.ended:
            raise TokenError("lesson_unavailable", "this lesson has ended")
        # A classroom that reconnects replaces its older session.
        old = room.by_classroom(claims.classroom_id)
        if old is not None and old.role == claims.role:
            await self._evict(room, old)
        elif claims.role == "lead" and room.lead is not None:
            raise ProtocolError("lead_present", f"lead classroom {room.lead.classroom_id} is already in the lesson")
        p = Participant(
            participant_id=f"p{next(_ids)}",
            lesson_id=claims.lesson_id,
            classroom_id=claims.classroom_id,
            role=claims.role,
            name=claims.name,
            send=self.send,
            kick=self.kick,
            token_time=self.token_time,
        )
        events = room.add(p)
        self.participant, self.room, self.claims = p, room, claims
        logcontext.bind(lesson=claims.lesson_id, classroom=claims.classroom_id, participant=p.participant_id)
        if self._join_deadline is not None:
            self._join_deadline.cancel()
            self._join_deadline = None
        if self._on_joined is not None:
            self._on_joined()  # no longer an unauthenticated connection
        self.router.admission.on_joined(claims.lesson_id, claims.classroom_id)
        # Every role receives something (the lead: the remote classrooms' cameras).
        p.subscriber = SubscriberPeer(
            p.participant_id,
            self.settings,
            send_offer=self._send_subscribe_offer,
            send_tracks=self._send_tracks,
            adaptive=claims.role != "recorder",  # recordings keep the top layer
        )
        room.media.subscribers[p.participant_id] = p.subscriber
        await self.send(
            server_message(
                "joined",
                re=m.id,
                participant_id=p.participant_id,
                lesson_id=claims.lesson_id,
                lesson_title=room.title,
                classroom_id=claims.classroom_id,
                role=claims.role,
                name=claims.name,
                participants=room.visible_participants() if p.role in ("lead", "remote") else
                [q.public() for q in room.participants.values()],
                ice_servers=current_ice_servers(self.ice_servers),
                floor=room.floor.snapshot(),
                started_at=room.started_at,
                elapsed_ms=max(0, now_ms() - room.started_at),
                recording=room.recording,
                **({"expected": self.router.expected_classrooms(claims.lesson_id)} if p.role == "lead" else {}),
                **({"rubric": self._rubric(claims.lesson_id)} if p.role == "observer" else {}),
            )
        )
        if p.role == "recorder":
            await self._tell_recording(room, True)
            await self._notes_so_far(room)
        if p.visible:
            await room.broadcast(server_message("participant_joined", participant=p.public()))
            self.router.presence_changed(room)
        await room.broadcast_floor([e for e in events if not e.hidden])
        await room.refresh()

    async def _evict(self, room: Room, old: Participant) -> None:
        room.remove(old, graceful=False)
        await self._close_media(room, old)
        try:
            await old.kick("the same classroom joined again from another connection")
        except Exception:
            pass

    async def _send_subscribe_offer(self, sdp: str, tracks: list[dict[str, Any]]) -> None:
        await self.send(server_message("subscribe_offer", sdp=sdp, tracks=tracks))

    async def _send_tracks(self, tracks: list[dict[str, Any]]) -> None:
        await self.send(server_message("tracks", tracks=tracks))

    def _check_publish_rate(self, m: Message) -> None:
        bucket = self.publish_bucket
        if bucket is None or bucket.take(time.monotonic()):
            return
        wait = bucket.wait_s(time.monotonic())
        raise ProtocolError("rate_limited", f"publish: at most {bucket.burst} offers at once and {bucket.per_s:g} "
                            f"a second on one connection; retry in {wait:.1f} s", m.id)

    async def _publish(self, m: Message, p: Participant, room: Room) -> None:
        permissions.check(p.role, "publish")
        sdp = m.data["sdp"]
        sources: dict[str, str] = m.data.get("sources") or {}
        bounded(sdp)
        try:
            parsed = SessionDescription.parse(sdp)
        except Exception as exc:  # aiortc's parser raises assorted errors on garbage
            raise SdpError(f"the offer is not valid SDP: {exc}") from exc
        offered: list[tuple[str, str]] = []
        for media in parsed.media:
            if media.kind not in ("audio", "video"):
                continue
            if media.direction not in ("sendonly", "sendrecv"):
                continue
            mid = media.rtp.muxId
            source = sources.get(mid)
            if source is None:
                source = "students" if p.role == "remote" else "teacher"
                sources[mid] = source
            offered.append((media.kind, source))
        if not offered:
            raise SdpError("the offer has no audio or video m-line to publish (sendonly/sendrecv)")
        permissions.check_publish(p.role, offered)
        # Every publish is a new publish connection that replaces the previous one (the page adds
        # or removes a source, e.g. the courseware screen, by publishing its whole set again).
        if p.publisher is not None:
            await self._close_publisher(room, p)
        p.publisher = PublisherPeer(p.participant_id, p.classroom_id, self.settings, on_track=self._on_track)
        room.media.publishers[p.participant_id] = p.publisher
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(p.publisher.answer(sdp, sources), NEGOTIATION_TIMEOUT_S)
        except BaseException as exc:
            # A failed publish leaves nothing behind: the half-built connection is torn down.
            await self._close_publisher(room, p)
            if isinstance(exc, TimeoutError):
                raise SdpError("the offer could not be negotiated in time") from None
            if isinstance(exc, Exception) and not isinstance(exc, SdpError):
                raise SdpError(f"the offer could not be negotiated: {exc}") from exc
            raise
        tracks = [{"mid": mid, "kind": kind, "source": sources.get(mid)} for mid, kind in
                  ((md.rtp.muxId, md.kind) for md in parsed.media)]
        took = time.monotonic() - started
        if took > SLOW_ANSWER_S:  # a starved loop, mostly (docs/operations.md, "When a node dies")
            log.info("publish answer to %s took %.0f ms", p.classroom_id, took * 1000)
        await self.send(server_message("publish_answer", re=m.id, sdp=answer, tracks=tracks))

    def _on_track(self, track: UpTrack) -> None:
        room = self.room
        if room is None or self.participant is None:
            track.close()
            return
        room.media.add_track(track)
        asyncio.get_running_loop().create_task(room.refresh())

    async def _floor_action(self, m: Message, p: Participant, room: Room) -> None:
        entry = FLOOR_ACTIONS.get(m.type)
        if entry is None:
            raise ProtocolError("unknown_type", f"unknown message type {m.type!r}", m.id)
        permission, act = entry
        permissions.check(p.role, permission)
        target = m.data.get("classroom_id")  # validated by the protocol schema per type
        events = act(room.floor, p.classroom_id, target, now_ms())
        room.record(events)
        # Media first (audio gating takes effect at once), then tell everybody.
        await room.refresh()
        await room.broadcast_floor(events)

    def _rubric(self, lesson_id: str) -> list[str]:
        book = self.router.notes
        return book.rubric_for_lesson(lesson_id) if book is not None else list(DEFAULT_RUBRIC)

    async def _tell_recording(self, room: Room, active: bool) -> None:
        """``recording`` to the classrooms and the observers (whose page links the recording,
        with the notes, once there is one); never to recorders."""
        msg = server_message("recording", active=active)
        targets = [q for q in room.participants.values() if q.role != "recorder"]
        await asyncio.gather(*(q.send(msg) for q in targets), return_exceptions=True)

    async def _notes_so_far(self, room: Room) -> None:
        """A recorder that joins (late, or again after a restart) gets the lesson's notes so far:
        it writes those it does not have yet into the manifest (``note_id`` tells them apart)."""
        book = self.router.notes
        if book is None:
            return
        try:
            earlier = book.notes_of(room.lesson_id)
        except Exception:
            log.exception("notes of %s could not be read for the recorder", room.lesson_id)
            return
        for note in earlier:
            await self.send(server_message("note", note=note.to_json()))

    async def _note(self, m: Message, p: Participant, room: Room) -> None:
        """An observer's note: checked, stamped with the lesson's media time (the recording's
        timeline when the lesson is recorded, else the live room's), kept in the schedule
        database, answered with ``note_saved`` and relayed as ``note`` to the lesson's other
        observers and its recorder (which writes it into the manifest) — never to a classroom."""
        permissions.check(p.role, "note")
        if not self.note_bucket.take(time.monotonic()):
            raise ProtocolError("rate_limited", f"note: at most {NOTE_BURST} notes at once and {NOTE_PER_S:g} a "
                                "second on one connection", m.id)
        book = self.router.notes
        now = now_ms()
        try:
            checked = check_note(m.data, self._rubric(room.lesson_id))
            at = moment_at_ms(m.data.get("moment"), room.started_at, now)
        except NoteError as exc:
            raise ProtocolError("bad_field", f"note: {exc}", m.id) from None
        origin = book.timeline_origin_ms(room.lesson_id) if book is not None else None
        note = Note(
            id=new_note_id(), lesson_id=room.lesson_id, at_ms=at,
            t_ms=timeline_ms(at, room.started_at if origin is None else origin),
            author=p.name, author_id=p.classroom_id, author_role="observer", text=checked.text,
            dimension=checked.dimension, score=checked.score, moment=m.data.get("moment") is not None,
            origin="live",
        )  # fmt: skip
        if book is not None:
            note = book.save_note(note)
        log.info("note %s on lesson %s by %s at t=%d ms", note.id, room.lesson_id, p.classroom_id, note.t_ms)
        await self.send(server_message("note_saved", re=m.id, t_ms=note.t_ms, note=note.to_json()))
        relay = server_message("note", note=note.to_json())
        others = [q for q in room.participants.values() if q is not p and q.role in ("observer", "recorder")]
        await asyncio.gather(*(q.send(relay) for q in others), return_exceptions=True)

    async def _end_lesson(self, m: Message, p: Participant, room: Room) -> None:
        """The lead ends the lesson for everybody: every classroom and observer gets
        ``lesson_ended`` and its connection is closed (pages do not reconnect); the schedule
        marks the lesson ended, so its links no longer join; the recorder is stopped by its
        coordinator (``router.on_lesson_ended``)."""
        permissions.check(p.role, "end_lesson")
        room.ended = True
        t = now_ms()
        room.events.append({"t_ms": t, "type": "lesson_ended", "classroom_id": p.classroom_id,
                            "by": p.classroom_id, "hidden": False})
        log.info("lesson %s ended by %s", room.lesson_id, p.classroom_id)
        self.router.lesson_ended(room.lesson_id)
        fields: dict[str, Any] = {"by": p.classroom_id, "name": p.name, "t_ms": t}
        others = [q for q in room.participants.values() if q is not p and q.role != "recorder"]
        await asyncio.gather(
            *(q.kick("the lesson has ended", "lesson_ended", server_message("lesson_ended", **fields))
              for q in others),
            return_exceptions=True,
        )
        await self.kick("the lesson has ended", "lesson_ended", server_message("lesson_ended", re=m.id, **fields))

    async def _close_publisher(self, room: Room, p: Participant) -> None:
        publisher, p.publisher = p.publisher, None
        room.media.remove_tracks_of(p.participant_id)
        room.media.publishers.pop(p.participant_id, None)
        if publisher is not None:
            await publisher.close()

    async def _close_media(self, room: Room, p: Participant) -> None:
        gone = room.media.remove_tracks_of(p.participant_id)
        room.media.publishers.pop(p.participant_id, None)
        room.media.subscribers.pop(p.participant_id, None)
        if p.subscriber is not None:
            await p.subscriber.close()
        if p.publisher is not None:
            await p.publisher.close()
        if gone:
            await room.refresh()

    async def _leave(self, graceful: bool) -> None:
        p, room = self.participant, self.room
        self.participant = None
        if p is None or room is None:
            return
        if p.participant_id not in room.participants:
            return  # already evicted by a newer session of the same classroom
        events = room.remove(p, graceful=graceful)
        await self._close_media(room, p)
        self.router.admission.on_left(p.lesson_id, p.classroom_id)
        if p.visible:
            await room.broadcast(server_message("participant_left", participant=p.public()))
            self.router.presence_changed(room)
        if p.role == "recorder" and not room.recording:
            await self._tell_recording(room, False)
        await room.broadcast_floor([e for e in events if not e.hidden])
        await room.refresh()
        await self.router.release(room)
