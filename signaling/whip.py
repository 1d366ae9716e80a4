"""WHIP ingest (RFC 9725, ``POST /whip``) and WHEP egress (``POST /whep``): an HTTP offer turns
into the same :class:`Participant` a WebSocket join makes — a classroom without a socket.

* WHIP: the publisher's ``Participant`` joins the room like a WebSocket classroom (it is on the
  lead's grid, recorded, counted by analytics), publishes through a :class:`PublisherPeer`, and
  receives nothing.
* WHEP: the player's ``Participant`` receives through a :class:`SubscriberPeer` that *answers*
  the player's ``recvonly`` offer; what it receives is :meth:`Room.wanted_for` of its role,
  reassigned over the offer's m-lines without renegotiation.

Errors are the API's shape ``{"error": {"code", "message"}}``, logged and counted by code in
``SIGNALING.errors`` (``classroom_signaling_errors_total``). docs/whip-whep.md.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiortc.sdp import SessionDescription

from sfu.peer import PeerSettings, PublisherPeer, SdpError, SubscriberPeer
from sfu.stats import SIGNALING
from sfu.uptrack import UpTrack
from signaling import permissions
from signaling.ice_servers import IceServerSource, current_ice_servers
from signaling.protocol import server_message
from signaling.room import Participant, Room
from signaling.routing.base import ClusterUnavailable, Router
from signaling.session import NEGOTIATION_TIMEOUT_S, bounded
from signaling.tokens import TokenClaims, TokenError, TokenSigner

log = logging.getLogger(__name__)
_ids = itertools.count(1)

MAX_SDP_BYTES = 64 * 1024  # an offer is a few KB; nothing parses more than this
MAX_FRAG_BYTES = 8 * 1024  # a trickle-ICE fragment
READ_TIMEOUT_S = 5.0  # a body that trickles in slower than this is cut off
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post",
    "Access-Control-Max-Age": "600",
}
FRAG_TYPE = "application/trickle-ice-sdpfrag"
MAX_ICE_RESTARTS = 16  # per session: each one re-runs the connectivity checks


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass(eq=False)
class Resource:
    """One WHIP or WHEP session (the URL ``/whip/<id>`` or ``/whep/<id>``)."""

    kind: str  # "whip" or "whep"
    resource_id: str
    claims: TokenClaims
    room: Room
    participant: Participant
    etag: str
    ice_ufrag: str
    closed: bool = False
    restarts: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


def _error(exc: HttpError) -> web.Response:
    SIGNALING.error(exc.code)
    log.info("whip/whep error %s (%d): %s", exc.code, exc.status, exc.message)
    return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status,
                             headers={**CORS_HEADERS, **exc.headers})


def _bearer(request: web.Request) -> str:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpError(401, "token_missing", "send the join token as 'Authorization: Bearer <token>'",
                        {"WWW-Authenticate": 'Bearer realm="classroom"'})
    return token.strip()


async def _body(request: web.Request, mime: str, limit: int) -> str:
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype != mime:
        raise HttpError(415, "unsupported_media_type", f"the body must be {mime} (got {ctype or 'none'})")
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, "body_too_large", f"the body is limited to {limit} bytes")
    async def read() -> bytes:
        parts: list[bytes] = []
        size = 0
        while size <= limit:  # read(n) returns what has arrived: loop to the end of the body
            chunk = await request.content.read(limit + 1 - size)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    try:
        data = await asyncio.wait_for(read(), READ_TIMEOUT_S)
    except TimeoutError:
        raise HttpError(408, "body_timeout", f"the body did not arrive within {READ_TIMEOUT_S:g} s") from None
    if len(data) > limit:
        raise HttpError(413, "body_too_large", f"the body is limited to {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "sdp_invalid", "the body is not UTF-8") from None


def _parse_offer(sdp: str) -> tuple[SessionDescription, str]:
    try:
        bounded(sdp)
        parsed = SessionDescription.parse(sdp)
    except SdpError as exc:
        raise HttpError(400, "sdp_invalid", str(exc)) from None
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise HttpError(400, "sdp_invalid", f"the offer is not valid SDP: {exc}") from None
    media = [m for m in parsed.media if m.kind in ("audio", "video")]
    if not media:
        raise HttpError(400, "sdp_invalid", "the offer has no audio or video m-line")
    ufrag = next((m.ice.usernameFragment for m in media if m.ice and m.ice.usernameFragment), "")
    return parsed, ufrag or ""


def link_headers(ice_servers: IceServerSource) -> list[str]:
    """RFC 9725 section 4.6: one ``Link: <url>; rel="ice-server"`` per TURN/STUN URL."""
    out = []
    for server in current_ice_servers(ice_servers):
        urls = server.get("urls") or []
        for url in [urls] if isinstance(urls, str) else urls:
            value = f'<{url}>; rel="ice-server"'
            if server.get("username"):
                value += f'; username="{server["username"]}"; credential="{server.get("credential", "")}"'
                value += '; credential-type="password"'
            out.append(value)
    return out


@dataclass
class FragLines:
    ufrag: str = ""
    pwd: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    end: bool = False  # a=end-of-candidates


def parse_fragment(text: str) -> FragLines:
    """An ``application/trickle-ice-sdpfrag`` body (RFC 8840): ``a=ice-ufrag``, ``a=mid`` and
    the ``a=candidate`` lines after each."""
    frag = FragLines()
    mid: str | None = None
    index = -1
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("a=ice-ufrag:"):
            frag.ufrag = line[len("a=ice-ufrag:"):]
        elif line.startswith("a=ice-pwd:"):
            frag.pwd = line[len("a=ice-pwd:"):]
        elif line == "a=end-of-candidates":
            frag.end = True
        elif line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:"):]
        elif line.startswith("a=candidate:"):
            frag.candidates.append({"candidate": line[2:], "sdpMid": mid,
                                    "sdpMLineIndex": max(index, 0) if mid is None else None})
    return frag


class WhipEndpoints:
    def __init__(self, router: Router, signer: TokenSigner, settings: PeerSettings,
                 ice_servers: IceServerSource) -> None:
        self.router = router
        self.signer = signer
        self.settings = settings
        self.ice_servers = ice_servers
        self.resources: dict[str, Resource] = {}

    def add_routes(self, app: web.Application) -> None:
        for kind, post in (("whip", self.post_whip), ("whep", self.post_whep)):
            app.router.add_route("OPTIONS", f"/{kind}", self.options)
            app.router.add_post(f"/{kind}", self._guarded(post))
            app.router.add_route("OPTIONS", f"/{kind}/{{rid}}", self.options)
            app.router.add_route("PATCH", f"/{kind}/{{rid}}", self._guarded(self.patch))
            app.router.add_delete(f"/{kind}/{{rid}}", self._guarded(self.delete))
        app.on_shutdown.append(self._shutdown)

    def _guarded(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except HttpError as exc:
                return _error(exc)
            except Exception:
                log.exception("internal error in %s %s", request.method, request.path)
                return _error(HttpError(500, "internal", f"internal error in {request.method} {request.path}"))
        return run

    async def options(self, request: web.Request) -> web.Response:
        headers = dict(CORS_HEADERS)
        if "rid" in request.match_info:
            headers["Accept-Patch"] = FRAG_TYPE
        else:
            headers["Accept-Post"] = "application/sdp"
        return web.Response(status=204, headers=headers)

    # -- POST ---------------------------------------------------------------------------------

    def _claims(self, request: web.Request, roles: tuple[str, ...], what: str) -> TokenClaims:
        try:
            claims = self.signer.verify(_bearer(request))
        except TokenError as exc:
            raise HttpError(401, exc.code, str(exc)) from None
        if claims.role not in roles:
            raise HttpError(403, "forbidden", f"role {claims.role} may not {what} (roles: {', '.join(roles)})")
        try:
            self.router.admission.admit(claims)
        except TokenError as exc:
            raise HttpError(403, exc.code, str(exc)) from None
        except Exception as exc:  # the schedule's refusals (ended, cancelled) carry a code
            code = str(getattr(exc, "code", "forbidden"))
            raise HttpError(403, code, str(exc)) from None
        return claims

    async def _room_here(self, request: web.Request, claims: TokenClaims) -> Room:
        """The lesson's room on this node. With several nodes a lesson held by another node is
        not opened here: ``307`` to that node's URL (a WHIP/WHEP client follows it with the same
        request, RFC 9725), or ``503 cluster_unavailable`` when that cannot be known."""
        try:
            owner = await self.router.place(claims.lesson_id)
        except ClusterUnavailable as exc:
            raise HttpError(503, exc.code, str(exc), {"Retry-After": "2"}) from None
        if owner is not None:
            url = self.router.node_url(owner)
            if not url:
                raise HttpError(503, "cluster_unavailable", f"the lesson's node {owner} has no known URL",
                                {"Retry-After": "2"})
            raise HttpError(307, "moved", f"the lesson is held by node {owner}",
                            {"Location": url.rstrip("/") + request.path_qs})
        return self.router.room(claims.lesson_id, claims.lesson_title)

    def _resource_url(self, request: web.Request, kind: str, rid: str) -> str:
        return f"/{kind}/{rid}"

    async def post_whip(self, request: web.Request) -> web.Response:
        claims = self._claims(request, ("lead", "remote"), "publish over WHIP")
        offer = await _body(request, "application/sdp", MAX_SDP_BYTES)
        parsed, ufrag = _parse_offer(offer)
        default = "students" if claims.role == "remote" else "teacher"
        source = request.query.get("source", default)
        sources: dict[str, str] = {}
        offered: list[tuple[str, str]] = []
        for m in parsed.media:
            if m.kind in ("audio", "video") and m.direction in ("sendonly", "sendrecv"):
                sources[m.rtp.muxId] = source
                offered.append((m.kind, source))
        if not offered:
            raise HttpError(400, "sdp_invalid", "a WHIP offer needs a sendonly audio or video m-line")
        try:
            permissions.check_publish(claims.role, offered)
        except permissions.PermissionDenied as exc:
            raise HttpError(403, "forbidden", exc.message) from None
        room = await self._room_here(request, claims)
        await self._make_room(room, claims, "whip")
        res = self._new_resource("whip", claims, room, ufrag)
        p = res.participant
        p.publisher = PublisherPeer(p.participant_id, p.classroom_id, self.settings,
                                    on_track=lambda t: self._on_track(res, t))
        room.media.publishers[p.participant_id] = p.publisher
        answer = await self._negotiate(res, p.publisher.answer(offer, sources, dtls_server=True), "negotiated")
        await self._admitted(res)
        return self._created(request, res, answer)

    async def post_whep(self, request: web.Request) -> web.Response:
        claims = self._claims(request, ("remote", "observer"), "play over WHEP")
        offer = await _body(request, "application/sdp", MAX_SDP_BYTES)
        _, ufrag = _parse_offer(offer)
        room = await self._room_here(request, claims)
        await self._make_room(room, claims, "whep")
        res = self._new_resource("whep", claims, room, ufrag)
        p = res.participant

        async def no_offer(sdp: str, tracks: list[dict[str, Any]]) -> None:
            return None

        async def no_tracks(tracks: list[dict[str, Any]]) -> None:
            return None

        p.subscriber = SubscriberPeer(p.participant_id, self.settings, send_offer=no_offer, send_tracks=no_tracks)
        room.media.subscribers[p.participant_id] = p.subscriber
        p.subscriber.link.spotlight = room.floor.spotlighted
        preferred = {t.kind: t.codec.mime for t in reversed(room.wanted_for(p))}
        answer = await self._negotiate(res, p.subscriber.answer(offer, preferred), "answered")
        await self._admitted(res)
        return self._created(request, res, answer)

    async def _negotiate(self, res: Resource, answering: Awaitable[str], verb: str) -> str:
        """The peer's answer within NEGOTIATION_TIMEOUT_S; on any failure the resource is closed
        and the client gets 422 ``sdp_invalid``."""
        try:
            return await asyncio.wait_for(answering, NEGOTIATION_TIMEOUT_S)
        except BaseException as exc:
            await self._close(res, graceful=False)
            if isinstance(exc, TimeoutError):
                raise HttpError(422, "sdp_invalid", "the offer could not be negotiated in time") from None
            if isinstance(exc, Exception):
                raise HttpError(422, "sdp_invalid", f"the offer could not be {verb}: {exc}") from None
            raise

    async def _make_room(self, room: Room, claims: TokenClaims, kind: str) -> None:
        """A resource of the same kind for the same classroom is replaced (OBS restarted without
        DELETE); a second lead is refused, as on the WebSocket."""
        for other in list(self.resources.values()):
            if (other.kind == kind and other.claims.lesson_id == claims.lesson_id
                    and other.claims.classroom_id == claims.classroom_id):
                log.info("%s resource %s replaced by a new one of classroom %s", kind, other.resource_id,
                         claims.classroom_id)
                await self._close(other, graceful=False)
        if claims.role == "lead" and room.lead is not None:
            raise HttpError(409, "lead_present", f"lead classroom {room.lead.classroom_id} is already in the lesson")

    def _new_resource(self, kind: str, claims: TokenClaims, room: Room, ufrag: str) -> Resource:
        rid = secrets.token_urlsafe(18)
        holder: list[Resource] = []

        async def send(msg: dict[str, Any]) -> None:
            return None  # nobody to tell: the HTTP client only has its media

        async def kick(reason: str = "", code: str = "replaced", notice: dict[str, Any] | None = None) -> None:
            if holder:
                log.info("%s resource %s closed: %s (%s)", kind, rid, reason, code)
                await self._close(holder[0], graceful=code == "lesson_ended")

        p = Participant(participant_id=f"{kind}{next(_ids)}", lesson_id=claims.lesson_id,
                        classroom_id=claims.classroom_id, role=claims.role, name=claims.name,
                        send=send, kick=kick)
        res = Resource(kind, rid, claims, room, p, etag=f'"{secrets.token_hex(8)}"', ice_ufrag=ufrag)
        holder.append(res)
        self.resources[rid] = res
        events = room.add(p)
        res.tasks.add(asyncio.get_running_loop().create_task(room.broadcast_floor(
            [e for e in events if not e.hidden])))
        self.router.admission.on_joined(claims.lesson_id, claims.classroom_id)
        return res

    async def _admitted(self, res: Resource) -> None:
        p, room = res.participant, res.room
        log.info("%s: %s classroom %s joined lesson %s as %s", res.kind, p.participant_id, p.classroom_id,
                 p.lesson_id, p.role)
        if p.visible:
            await room.broadcast(server_message("participant_joined", participant=p.public()))
            self.router.presence_changed(room)
        await room.refresh()

    def _on_track(self, res: Resource, track: UpTrack) -> None:
        if res.closed:
            track.close()
            return
        res.room.media.add_track(track)
        task = asyncio.get_running_loop().create_task(res.room.refresh())
        res.tasks.add(task)
        task.add_done_callback(res.tasks.discard)

    def _created(self, request: web.Request, res: Resource, answer: str) -> web.Response:
        headers = {**CORS_HEADERS, "Location": self._resource_url(request, res.kind, res.resource_id),
                   "ETag": res.etag, "Accept-Patch": FRAG_TYPE}
        resp = web.Response(status=201, text=answer, content_type="application/sdp", headers=headers)
        for value in link_headers(self.ice_servers):
            resp.headers.add("Link", value)
        return resp

    # -- PATCH / DELETE -----------------------------------------------------------------------

    def _owned(self, request: web.Request) -> Resource:
        kind = request.path.split("/")[1]
        token = _bearer(request)
        res = self.resources.get(request.match_info["rid"])
        if res is None or res.kind != kind or res.closed:
            raise HttpError(404, "not_found", f"no such {kind} resource")
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            raise HttpError(401, exc.code, str(exc)) from None
        if (claims.lesson_id, claims.classroom_id) != (res.claims.lesson_id, res.claims.classroom_id):
            raise HttpError(403, "forbidden", "this resource belongs to another classroom")
        return res

    async def patch(self, request: web.Request) -> web.Response:
        res = self._owned(request)
        match = request.headers.get("If-Match")
        if match is not None and match.strip() not in ("*", res.etag):
            raise HttpError(412, "etag_mismatch", f"If-Match {match.strip()} is not the session's ETag {res.etag}")
        text = await _body(request, FRAG_TYPE, MAX_FRAG_BYTES)
        frag = parse_fragment(text)
        p = res.participant
        peer = p.publisher if res.kind == "whip" else p.subscriber
        if peer is None:
            raise HttpError(404, "not_found", "the session has no connection")
        if frag.ufrag and res.ice_ufrag and frag.ufrag != res.ice_ufrag:
            return await self._restart(res, peer, frag)
        await self._add_candidates(peer, frag)
        return web.Response(status=204, headers=CORS_HEADERS)

    async def _restart(self, res: Resource, peer: PublisherPeer | SubscriberPeer, frag: FragLines) -> web.Response:
        """RFC 9725 section 4.4.2: a fragment with a new ice-ufrag and ice-pwd restarts ICE; the
        answer is ``200`` with our new credentials and candidates and a new ETag."""
        if not frag.pwd:
            raise HttpError(400, "sdp_invalid", "an ICE restart (a new a=ice-ufrag) needs its a=ice-pwd")
        if res.restarts >= MAX_ICE_RESTARTS:
            raise HttpError(429, "too_many_restarts",
                            f"at most {MAX_ICE_RESTARTS} ICE restarts per session: DELETE it and POST again")
        try:
            restart = peer.restart_ice(frag.ufrag, frag.pwd)
        except ValueError as exc:
            raise HttpError(422, "ice_restart_unsupported", f"ICE could not be restarted: {exc}") from None
        res.restarts += 1
        res.ice_ufrag = frag.ufrag
        res.etag = f'"{secrets.token_hex(8)}"'
        log.info("%s resource %s: ICE restart %d", res.kind, res.resource_id, res.restarts)
        await self._add_candidates(peer, frag)
        mid = frag.candidates[0]["sdpMid"] if frag.candidates and frag.candidates[0]["sdpMid"] else "0"
        lines = [f"a=ice-ufrag:{restart.ufrag}", f"a=ice-pwd:{restart.pwd}", "m=audio 9 UDP/TLS/RTP/SAVPF 0",
                 f"a=mid:{mid}"]
        lines += [f"a=candidate:{c}" for c in restart.candidates] + ["a=end-of-candidates"]
        return web.Response(status=200, body=("\r\n".join(lines) + "\r\n").encode(),
                            headers={**CORS_HEADERS, "Content-Type": FRAG_TYPE, "ETag": res.etag})

    async def _add_candidates(self, peer: PublisherPeer | SubscriberPeer, frag: FragLines) -> None:
        for cand in frag.candidates:
            try:
                await asyncio.wait_for(peer.add_candidate(cand), 5.0)
            except TimeoutError:
                raise HttpError(422, "candidate_invalid", "the ICE candidate could not be applied in time") from None
            except Exception as exc:
                raise HttpError(422, "candidate_invalid", f"the ICE candidate could not be applied: {exc}") from None

    async def delete(self, request: web.Request) -> web.Response:
        res = self._owned(request)
        await self._close(res, graceful=True)
        return web.Response(status=200, headers=CORS_HEADERS)

    async def _close(self, res: Resource, graceful: bool) -> None:
        if res.closed:
            return
        res.closed = True
        self.resources.pop(res.resource_id, None)
        p, room = res.participant, res.room
        for task in res.tasks:
            task.cancel()
        if p.participant_id in room.participants:
            events = room.remove(p, graceful=graceful)
            gone = room.media.remove_tracks_of(p.participant_id)
            room.media.publishers.pop(p.participant_id, None)
            room.media.subscribers.pop(p.participant_id, None)
            self.router.admission.on_left(p.lesson_id, p.classroom_id)
            if p.visible:
                await room.broadcast(server_message("participant_left", participant=p.public()))
                self.router.presence_changed(room)
            await room.broadcast_floor([e for e in events if not e.hidden])
            if gone:
                await room.refresh()
        for peer in (p.publisher, p.subscriber):
            if peer is not None:
                await peer.close()
        log.info("%s resource %s of classroom %s closed", res.kind, res.resource_id, p.classroom_id)
        await self.router.release(room)

    async def _shutdown(self, app: web.Application) -> None:
        for res in list(self.resources.values()):
            await self._close(res, graceful=False)


def add_whip_routes(app: web.Application, router: Router, signer: TokenSigner, settings: PeerSettings,
                    ice_servers: IceServerSource) -> WhipEndpoints:
    endpoints = WhipEndpoints(router, signer, settings, ice_servers)
    endpoints.add_routes(app)
    return endpoints
