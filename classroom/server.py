"""Composition root: wires config, SFU, signaling, schedule, recordings and metrics into one
aiohttp application and runs it (``classroom serve``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from classroom import gcpolicy
from classroom.config import Config, ConfigError
from classroom.filemodes import secure_data_dir, use_private_umask, write_private
from classroom.links import derive_base_url, detected_addresses, is_loopback, is_wildcard
from classroom.tls import CA_ROUTE, TlsSetup, resolve_tls
from classroom.turn import IceServers, TurnConfigError
from sfu import glue, lane
from sfu.link import LinkConfig
from sfu.node import MediaNode
from sfu.peer import PeerSettings
from signaling.app import GUARD_KEY, add_static_pages, create_app
from signaling.connguard import GuardedRunner
from signaling.routing.base import Router
from signaling.routing.local import LocalRouter
from signaling.tokens import TokenError, TokenSigner
from signaling.whip import add_whip_routes

log = logging.getLogger("classroom")

DEMO_LESSON_ID = "demo-lesson"
ADMIN_KEY_FILE = "admin-key.txt"  # the first administrator's API key, written once (0600)


@dataclass
class Server:
    config: Config
    app: web.Application
    router: Router
    media: MediaNode
    signer: TokenSigner
    runner: web.AppRunner | None = None
    port: int = 0
    demo_links: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    tls: TlsSetup | None = None
    detected: list[str] = field(default_factory=list)  # this machine's LAN addresses (classroom/links.py)
    internal_port: int = 0  # plain-HTTP listener on 127.0.0.1 for the recorder when the main one is not

    @property
    def base_url(self) -> str:
        """What every link starts with: ``public_url``, else derived (classroom/links.py)."""
        cfg = self.config.server
        return derive_base_url(cfg.public_url, cfg.host, cfg.shared_port or self.port, self.tls is not None,
                               self.config.media.ice_addresses, self.detected)

    @property
    def node_url(self) -> str:
        """This node's own URL (its own port; ``base_url`` may be the cluster's shared port)."""
        cfg = self.config.server
        return derive_base_url("", cfg.host, self.port, self.tls is not None, self.config.media.ice_addresses,
                               self.detected)

    @property
    def local_ws_url(self) -> str:
        """The signaling WebSocket for workers on this machine (the recorder): plain ws on loopback."""
        if self.internal_port:
            return f"ws://127.0.0.1:{self.internal_port}/ws"
        host = self.config.server.host
        return f"ws://{'127.0.0.1' if is_wildcard(host) else host}:{self.port}/ws"

    async def stop(self) -> None:
        recording = self.extras.get("recording")
        if recording is not None:
            await recording.stop_all()
        try:
            await asyncio.wait_for(self.router.close_all(), 5.0)
        except TimeoutError:
            log.warning("some classroom connections did not close in time")
        await self.router.stop()
        await self.media.stop()
        mux = self.extras.pop("udp_mux", None)
        if mux is not None:
            mux.close()
            self.media.settings.udp_mux = None
        if self.runner is not None:
            await self.runner.cleanup()
        store = self.extras.get("schedule")
        if store is not None:
            store.close()


def _ice_servers(config: Config) -> list[dict[str, Any]]:
    """The ``ice_servers`` list a classroom would get now (classroom/turn.py)."""
    return ice_server_source(config)()


def ice_server_source(config: Config) -> IceServers:
    try:
        return IceServers.from_media(config.media)
    except TurnConfigError as exc:
        raise ConfigError(str(exc)) from None


def build_server(config: Config) -> Server:
    data_dir = config.data_path
    secure_data_dir(data_dir)  # 0700, secrets 0600 (classroom/filemodes.py)
    glue.configure_ice(config.media.ice_addresses)
    lane.use_compiled(config.media.compiled_fanout)
    glue.set_direct_protect(config.media.direct_protect)
    # one secret for every node of a cluster (docs/operations.md): env, a secret file, or the data dir's
    secret_file = os.environ.get("CLASSROOM_TOKEN_SECRET_FILE")
    try:
        signer = TokenSigner.from_data_dir(data_dir, os.environ.get("CLASSROOM_TOKEN_SECRET"), secret_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"token secret ({secret_file or data_dir / 'token_secret'}): {exc}") from None
    settings = PeerSettings(
        cache_size=config.media.packet_cache_size,
        keyframe_interval_s=config.media.keyframe_request_interval_s,
        link=LinkConfig(adaptive=config.media.adaptive_layers),
        red=config.media.red_audio,
        pacing=config.media.pacing,
        queue_pacing=config.media.queue_pacing,
        twcc=config.media.twcc,
        subscriber_dtls_client=config.media.subscriber_dtls_client,
    )
    media = MediaNode(settings, remb_bitrate=config.media.remb_bitrate)
    router: Router = LocalRouter(media) if not config.redis.url else _redis_router(config, media)
    ice_servers = ice_server_source(config)  # fresh TURN credentials per join
    app = create_app(
        router,
        signer,
        settings,
        ice_servers=ice_servers,
        max_message_bytes=config.server.max_message_bytes,
        limits=config.limits,
    )
    server = Server(config=config, app=app, router=router, media=media, signer=signer,
                    port=config.server.port)
    _wire_https(server)
    _wire_optional(server)
    add_whip_routes(app, router, signer, settings, ice_servers)  # POST /whip, /whep (docs/whip-whep.md)
    add_static_pages(app)
    return server


def _open_media_port(server: Server) -> None:
    """The node's one UDP media port (``media.udp_port``, sfu.glue.UdpMux) for every connection,
    unless ``media.udp_mux`` is off. A port in use is a ConfigError that names the setting."""
    media = server.config.media
    if not media.udp_mux:
        return
    try:
        mux = glue.UdpMux(media.ice_addresses, media.udp_port)
    except glue.UdpMuxError as exc:
        raise ConfigError(str(exc)) from None
    server.media.settings.udp_mux = mux  # the PeerSettings every peer of this server reads
    server.extras["udp_mux"] = mux
    log.info("media: every connection on %s", mux.describe())


def _redis_router(config: Config, media: MediaNode) -> Router:
    """One node of a cluster (docs/operations.md, "Cluster")."""
    import socket

    from signaling.routing.redis import RedisRouter

    r = config.redis
    node_id = r.node_id or f"{socket.gethostname()}-{config.server.port}"
    try:
        return RedisRouter(media, r.url, node_id, password=r.password or None, heartbeat_s=r.heartbeat_s,
                           ttl_s=r.ttl_s, prefix=r.prefix, takes_lessons=r.takes_lessons)
    except ValueError as exc:
        raise ConfigError(f"redis: {exc}") from None


def _wire_https(server: Server) -> None:
    """TLS (classroom/tls.py), forwarded headers behind a proxy, the loopback listener for workers."""
    cfg = server.config.server
    if is_wildcard(cfg.host) or not is_loopback(cfg.host):
        server.detected = detected_addresses()
    server.tls = resolve_tls(cfg, server.config.data_path, server.config.media.ice_addresses, server.detected)
    if server.tls is not None or not (is_wildcard(cfg.host) or is_loopback(cfg.host)):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            server.internal_port = probe.getsockname()[1]
    if cfg.behind_proxy:
        from classroom.proxy import forwarded_headers

        server.app.middlewares.append(forwarded_headers)
    generated = server.tls.generated if server.tls is not None else None
    if generated is not None:
        ca_pem = generated.ca_path.read_bytes()

        async def ca_certificate(request: web.Request) -> web.Response:
            """This server's own CA certificate (public), for a classroom PC to trust."""
            return web.Response(body=ca_pem, content_type="application/x-x509-ca-cert",
                                headers={"Content-Disposition": 'attachment; filename="classroom-ca.crt"'})

        server.app.router.add_get(CA_ROUTE, ca_certificate)


def _wire_optional(server: Server) -> None:
    """Metrics, the bureau schedule and recordings."""
    from classroom.metrics import setup_metrics
    from signaling.schedule.analytics_api import setup_analytics_api
    from signaling.schedule.api import setup_schedule
    from signaling.schedule.store import ScheduleStore

    setup_metrics(server)
    db = server.config.database
    # one node: the join records a previous run left open are closed; nodes of a cluster share
    # the database and must leave each other's open
    store = ScheduleStore.open(db.url or server.config.data_path / "schedule.sqlite3",
                               password=db.password or None, close_stale_joins=not server.config.redis.url)
    log.info("schedule database: %s", store.database.where)
    from classroom.database_metrics import ScheduleDatabaseCollector
    from classroom.metrics import METRICS_REGISTRY

    server.app[METRICS_REGISTRY].register(ScheduleDatabaseCollector(store))
    if server.config.redis.url:
        from classroom.cluster_metrics import ClusterCollector

        server.app[METRICS_REGISTRY].register(ClusterCollector(server.router))
    server.extras["schedule"] = store
    server.router.admission = store
    server.router.expected_sources.append(store.expected_classrooms)
    server.router.on_lesson_ended.append(store.end_occurrence)
    setup_schedule(server.app, store, server.signer, server.router, server.base_url, server.config.limits)
    _wire_recording(server, store)
    # the term dashboard (/api/analytics/...) reads the analysed lessons' reports
    setup_analytics_api(server.app, store, server.signer, server.router, server.config.data_path / "recordings")
    key = store.ensure_bootstrap_admin()
    if key:
        # also in a 0600 file of the data dir: under compose the banner is only in the logs
        key_file = server.config.data_path / ADMIN_KEY_FILE
        write_private(key_file, f"{key}\n# log in at {server.base_url}/bureau.html; delete this file "
                                "once the key is kept somewhere safe\n")
        server.extras.setdefault("banner", []).append(
            "First start: a bureau administrator was created. Its API key (shown only once, "
            f"stored hashed):\n  {key}\n  Log in at {server.base_url}/bureau.html\n"
            f"  (also written to {key_file}, readable only by this user: delete it once the key is kept safe)"
        )


def _wire_recording(server: Server, store: Any) -> None:
    """Recorder processes for lessons with recording on, their catalogue, and analysis after."""
    from classroom.recording import RecordingCoordinator, RetentionPolicy
    from classroom.recording_catalogue import RecordingCatalogue
    from recorder.catalogue import recordings_root
    from recorder.core import safe_name
    from recorder.diskguard import DiskGuard
    from recorder.service import setup_recording
    from signaling.schedule.recording_policy import RecordingPolicy
    from signaling.schedule.recordings_api import setup_recordings_api

    config = server.config
    policy = config.recording
    service = setup_recording(
        server.app, config.data_path, ws_url=server.local_ws_url,
        segment_seconds=policy.segment_seconds, log_level=policy.log_level,
        standby=policy.enabled and policy.standby_recorder,
    )
    if config.redis.url and policy.enabled and policy.standby_recorder:
        async def prewarm(_app: web.Application) -> None:  # a lesson moved here records at once
            service.launcher.prewarm()

        server.app.on_startup.append(prewarm)
    bureau_policy = RecordingPolicy.in_data_dir(config.data_path)

    def wanted(lesson: str) -> bool:
        """The recording policy (docs/recording.md, "When a lesson is recorded")."""
        if not policy.enabled:
            return False
        if lesson == DEMO_LESSON_ID and config.server.demo_lesson:
            return policy.demo_lesson or policy.every_lesson
        return policy.every_lesson or store.recording_enabled(lesson)

    recordings = recordings_root(config.data_path)
    recordings.mkdir(parents=True, exist_ok=True)
    coordinator = RecordingCoordinator(
        service, server.signer, config.data_path,
        wanted=wanted,
        grace_s=policy.end_grace_s,
        analytics_interval_s=config.analytics.interval_s,
        access=server.router.recorders,
        guard=DiskGuard(recordings, policy.min_free_bytes, policy.min_free_percent),
        disk_check_s=policy.disk_check_s,
        retention=RetentionPolicy(policy.retention_days, policy.retention_sweep_s),
    )
    server.router.on_presence.append(coordinator.presence_changed)
    server.router.on_room_closed.append(coordinator.room_closed)

    def lesson_ended(lesson: str) -> None:  # the lead ended it: stop recording now, no grace
        task = asyncio.get_running_loop().create_task(coordinator.end(lesson))
        server.extras.setdefault("tasks", set()).add(task)
        task.add_done_callback(server.extras["tasks"].discard)

    server.router.on_lesson_ended.append(lesson_ended)
    coordinator.register_metrics(server.app)
    server.extras["recording"] = coordinator

    catalogue = RecordingCatalogue(
        service, config.data_path, policy.retention_days,
        active=lambda: {safe_name(lesson) for lesson in tuple(coordinator.recording)},  # read from a thread
    )

    class Source:
        entries = staticmethod(catalogue.entries)

        @staticmethod
        def status() -> dict[str, Any]:
            return {"enabled": policy.enabled, "demo_lesson": policy.demo_lesson, **coordinator.status()}

    setup_recordings_api(server.app, store, server.signer, server.router, Source(), bureau_policy)
    _wire_notes(server, store, service, lambda lesson: lesson in coordinator.recording)

    async def start_policy(_server: Server) -> None:
        coordinator.start()  # the free-disk guard's checks and the retention sweep

    server.extras.setdefault("on_start", []).append(start_policy)

    async def classroom_playback(request: web.Request) -> web.StreamResponse:
        """A lesson's own classrooms (their teachers) open its recording with the classroom's
        join link, for 30 days after the lesson: the signed token proves which lesson it was."""
        lesson_id = request.match_info["lesson_id"]
        try:
            claims = server.signer.verify(request.query.get("token"), grace_s=30 * 86400)
        except TokenError as exc:
            return web.json_response({"error": {"code": exc.code, "message": str(exc)}}, status=401)
        if claims.lesson_id != lesson_id or claims.role not in ("lead", "remote", "observer"):
            return web.json_response(
                {"error": {"code": "forbidden", "message": "this link is not a classroom of that lesson"}}, status=403
            )
        name = safe_name(lesson_id)
        if not service.recordings(name):
            return web.json_response({"error": {"code": "not_found", "message": "no recording of this lesson"}},
                                     status=404)
        url = service.playback_url(name)
        if claims.role in ("lead", "observer"):  # the lesson's teacher and observers read its notes
            url += "&token=" + quote(str(request.query.get("token")), safe="")
        raise web.HTTPFound(url)

    server.app.router.add_get("/api/recordings/{lesson_id}/playback", classroom_playback)


def _wire_notes(server: Server, store: Any, service: Any, recording_now: Callable[[str], bool]) -> None:
    """Observation notes (docs/observation.md): the live path's note book, the REST API."""
    from classroom.observation import RecordingNotes
    from signaling.schedule.notes_api import setup_notes_api
    from signaling.schedule.notes_store import ScheduleNotes

    recordings = RecordingNotes(server.config.data_path, server.router, service.signer, recording_now)
    book = ScheduleNotes(store, origin=recordings.origin_ms)
    server.router.notes = book
    setup_notes_api(server.app, store, server.signer, book, recordings)


def demo_links(server: Server) -> dict[str, str]:
    cfg = server.config.server
    signer = server.signer
    title = "演示课 Demo lesson"
    links: dict[str, str] = {}
    token = signer.issue(DEMO_LESSON_ID, "demo-lead", "lead", "主讲课堂 Lead classroom", lesson_title=title)
    links["lead"] = f"{server.base_url}/lead.html?token={token}"
    for i in range(1, cfg.demo_remotes + 1):
        token = signer.issue(
            DEMO_LESSON_ID, f"demo-remote-{i}", "remote", f"远端课堂 {i} Remote classroom {i}",
            lesson_title=title,
        )
        links[f"remote-{i}"] = f"{server.base_url}/remote.html?token={token}"
    token = signer.issue(DEMO_LESSON_ID, "demo-observer", "observer", "巡课 Observer", lesson_title=title)
    links["observer"] = f"{server.base_url}/observer.html?token={token}"
    return links


async def start_server(config: Config) -> Server:
    """Build and start listening (used by ``classroom serve`` and by the tests)."""
    use_private_umask()  # nothing written from here on (also by child processes) is readable by others
    if config.server.port == 0:  # pick the port first so join links carry the real one
        import socket

        with socket.socket() as probe:
            probe.bind((config.server.host, 0))
            config.server.port = probe.getsockname()[1]
    server = build_server(config)
    server.port = config.server.port
    _open_media_port(server)
    # caps on unauthenticated connections and the request-head timeout (signaling/connguard.py)
    server.runner = GuardedRunner(server.app, server.app[GUARD_KEY], access_log=None, shutdown_timeout=5.0)
    await server.runner.setup()
    ssl_context = server.tls.context if server.tls is not None else None
    site = web.TCPSite(server.runner, config.server.host, config.server.port, ssl_context=ssl_context)
    await site.start()
    if config.server.shared_port:  # the port every node of this machine shares (classroom cluster)
        await web.TCPSite(server.runner, config.server.host, config.server.shared_port, ssl_context=ssl_context,
                          reuse_port=True).start()
    if server.internal_port:
        await web.TCPSite(server.runner, "127.0.0.1", server.internal_port).start()
    server.media.start()
    describe = getattr(server.router, "describe", None)
    if describe is not None:  # a cluster node's registry entry (signaling/routing/redis.py)
        server.router.describe = lambda: {  # type: ignore[attr-defined]
            "url": server.node_url, "public_url": server.base_url,
            "media_addresses": list(config.media.ice_addresses), "pid": os.getpid()}
    await server.router.start()
    for hook in server.extras.get("on_start", []):
        await hook(server)
    if config.server.demo_lesson:
        server.demo_links = demo_links(server)
        remotes = [{"classroom_id": f"demo-remote-{i}", "name": f"远端课堂 {i} Remote classroom {i}"}
                   for i in range(1, config.server.demo_remotes + 1)]
        server.router.expected_sources.append(lambda lesson: remotes if lesson == DEMO_LESSON_ID else None)
    return server


def _print_banner(server: Server) -> None:
    if not server.config.server.banner:
        for line in server.extras.get("banner", []):
            print(line)
        sys.stdout.flush()
        return
    print(f"classroom: serving on {server.base_url}  (data: {server.config.data_path.resolve()})")
    mux = server.extras.get("udp_mux")
    if mux is not None:
        print(f"classroom: media for every classroom on {mux.describe()} (media.udp_port; open it, and TURN, "
              "in the firewall: docs/network.md)")
    else:
        print("classroom: media on a UDP port per connection (media.udp_mux is off)")
    if not server.config.media.compiled_fanout:
        print("classroom: forwarding with the pure-Python loop (media.compiled_fanout is off)")
    elif lane.fanout is None or not glue.fast_fanout_ready():
        print("classroom: the compiled fan-out loop (sfu/_fanout.c) is not available; forwarding in Python "
              "costs ~2x the CPU per packet. Install a C compiler and run `pip install -e .` again.")
    if server.tls is not None:
        for line in server.tls.banner(server.base_url):
            print(line)
    for line in server.extras.get("banner", []):
        print(line)
    if server.demo_links:
        print("Demo lesson 演示课 — open these in a browser:")
        for name, url in server.demo_links.items():
            print(f"  {name:<10} {url}")
        path = server.config.data_path / "demo-links.txt"
        write_private(path, "".join(f"{k} {v}\n" for k, v in server.demo_links.items()))  # valid tokens: 0600
        print(f"  (also written to {path})")
    sys.stdout.flush()


async def _serve_forever(config: Config) -> None:
    glue.forbid_codecs()
    glue.lean_receivers()  # fewer objects for every full GC to walk
    server = await start_server(config)
    _print_banner(server)
    gcpolicy.freeze_startup_objects()  # full GC pauses: 35 ms shorter (classroom/gcpolicy.py)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:
            pass
    await stop.wait()
    print("classroom: shutting down")
    await server.stop()


def run_server(config: Config, log_level: str = "INFO") -> int:
    from classroom import logfilters, logformat

    try:
        logformat.configure(log_level, config.server.log_format)
    except ValueError as exc:
        print(f"classroom serve: server.log_format: {exc}", file=sys.stderr)
        return 2
    # the recorder processes write to this stderr too: same format (classroom/cli.py worker_logging)
    os.environ["CLASSROOM_SERVER_LOG_FORMAT"] = config.server.log_format

    logfilters.install()  # malformed HTTP requests: one line, not a traceback
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    from signaling.schedule.database import DatabaseUnavailable

    try:
        runner(_serve_forever(config))
    except ConfigError as exc:
        print(f"classroom serve: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:  # logged with the reason (host, auth) where it happened
        print(f"classroom serve: {exc.message}: {exc.__cause__ or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"classroom serve: cannot listen on {config.server.host}:{config.server.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0


__all__ = ["Server", "build_server", "start_server", "run_server", "demo_links", "Path"]
