"""One dataclass tree for all settings: defaults here, a YAML file over them, then
``CLASSROOM_<SECTION>_<FIELD>`` environment variables over both (e.g. ``CLASSROOM_SERVER_PORT=9000``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from classroom.turn import IceServers, TurnConfigError
from signaling.limits import Limits


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./data"
    # The base URL classrooms open: printed demo links, demo-links.txt and the join links the API
    # returns start with it (e.g. "https://classroom.county.edu.cn" behind a reverse proxy). Empty:
    # derived from the bind address, the port and TLS (classroom/links.py); never 0.0.0.0.
    public_url: str = ""
    # HTTPS (browsers allow camera and microphone only on a secure origin). tls_cert/tls_key: PEM
    # files, e.g. from the bureau's CA. Without them, tls "auto" serves HTTPS with a certificate it
    # generates in the data dir when bound to a non-loopback address and plain HTTP on loopback;
    # "on" always serves HTTPS, "off" never (classroom/tls.py, docs/https.md).
    tls: str = "auto"
    tls_cert: str = ""
    tls_key: str = ""
    # Behind a reverse proxy that terminates TLS (deploy/nginx/classroom.conf): plain HTTP,
    # X-Forwarded-For/-Proto/-Host from the proxy are trusted, and public_url must be set.
    behind_proxy: bool = False
    max_message_bytes: int = 64 * 1024
    # "text" (one line per record) or "json" (one JSON object per line with lesson/classroom/
    # participant fields: classroom/logformat.py, docs/ops.md); --log-format, CLASSROOM_SERVER_LOG_FORMAT
    log_format: str = "text"
    # The demo lesson (links printed at start and in demo-links.txt). On by default for a first try
    # on a bare machine; deploy/compose.yaml turns it off (CLASSROOM_SERVER_DEMO_LESSON=false).
    demo_lesson: bool = True
    demo_remotes: int = 3
    # One node of `classroom cluster`: also listen on this port with SO_REUSEPORT, shared by every
    # node of the machine (the kernel spreads new connections over them; a dead node's share goes
    # to the others), and links use it. `port` stays this node's own URL. 0: none. --shared-port.
    shared_port: int = 0
    # Print the "serving on" line and the demo links at start (`classroom cluster` prints them once,
    # from its first node). The first administrator's key is printed either way.
    banner: bool = True


@dataclass
class MediaConfig:
    # Addresses the SFU's ICE candidates bind to. Loopback by default (nothing leaves the machine);
    # a real deployment lists the server's LAN/public addresses here.
    ice_addresses: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    # One UDP port for every classroom's media on this node (ICE, DTLS, SRTP of every connection, both
    # directions; one socket per ICE address): the one port a school's firewall needs open besides TURN
    # (docs/network.md). 0: one port the kernel picks at start (tests; printed in the banner). Every
    # node on one machine needs its own (`classroom cluster` gives node i udp_port + i - 1).
    udp_port: int = 7882
    # True (default): every connection of the node on the one udp_port (#19). False: every connection
    # binds a UDP socket of its own in the ephemeral range, as before #19 (debugging; docs/network.md).
    udp_mux: bool = True
    # TURN (coturn) for classrooms behind strict firewalls (classroom/turn.py, docs/network.md).
    # turn_url: TURN over UDP, e.g. "turn:turn.county.edu.cn:3478"; empty: none.
    turn_url: str = ""
    # Offer turn_url's host and port over TCP too ("?transport=tcp"): a network that blocks UDP.
    turn_tcp: bool = True
    # TURN over TLS, e.g. "turns:turn.county.edu.cn:443" (coturn's tls-listening-port): a
    # network that lets only HTTPS out. Empty: none.
    turn_tls_url: str = ""
    turn_secret: str = ""
    # The TURN secret read from a file (0600; e.g. a compose/Kubernetes secret at
    # /run/secrets/turn_secret) instead of the environment: CLASSROOM_MEDIA_TURN_SECRET_FILE.
    turn_secret_file: str = ""
    # How long the time-limited TURN credentials a classroom gets at join stay valid, seconds.
    turn_credential_ttl_s: float = 12 * 3600.0
    # Per-track packet cache for NACK (packets, power of two).
    packet_cache_size: int = 1024
    # At most one keyframe request per track per this many seconds.
    keyframe_request_interval_s: float = 1.0
    # Bitrate we advertise upstream (REMB) to the publisher, bits/s.
    remb_bitrate: int = 2_500_000
    # Forward with the compiled fan-out loop (sfu/_fanout.c) when it is built. False: the pure
    # Python loop (about twice the CPU per packet), e.g. to rule the C loop out when debugging.
    compiled_fanout: bool = True
    # Protect AES-GCM SRTP (the profile aiortc negotiates with browsers and bots) with the SFU's own
    # OpenSSL AES-GCM (sfu/_fanout.c AeadSession, #19) instead of libsrtp: the same bytes, ~0.5 us less
    # per forwarded packet. False: libsrtp for every packet, as before. AES-CM + HMAC always uses libsrtp.
    direct_protect: bool = True
    # Per-subscriber bandwidth estimation and layer choice (simulcast layers, pausing video
    # on a link too weak for it). False: every classroom gets the top layer, as before.
    adaptive_layers: bool = True
    # Pass RED (audio/red: each Opus packet also carries the previous frame) through between
    # browsers that both take it; others get plain Opus. False: Opus only, as before.
    red_audio: bool = True
    # Pace a constrained classroom's video (a leaky bucket at 2x its estimate) so a keyframe
    # burst does not overflow a school line's queue. Off by default: measured on 2026-12-02 it
    # made the step-down case worse (under the cap after 1.8 s instead of 0.9 s) and gained
    # nothing measurable elsewhere (docs/performance.md, "Weak links, 2026-12-02").
    pacing: bool = False
    # While a queue stands in front of a classroom's line (transport-cc overuse in the last 2 s),
    # pace its video at the rate that queue lets through, so a keyframe waits at the server and
    # not in the school router's queue in front of the audio. False: not paced then either.
    queue_pacing: bool = True
    # Offer subscribers transport-wide congestion control (transport-cc): the SFU numbers every
    # video packet per connection, the browser reports when each arrived, and a send-side
    # estimate (sfu/bwe/twcc.py) takes the place of the browser's REMB. False: REMB, as before.
    twcc: bool = True
    # The SFU is the DTLS client of the connections it offers (a classroom's subscribe connection:
    # its offer says a=setup:active), as it is of the publish connections it answers. True: a
    # classroom's receive connection is up within a round trip of the SFU's ICE check, also on a
    # busy node (the lesson of a node that died moving to it: 1-14 s before, docs/operations.md).
    # False: a=setup:actpass (the browser is the DTLS client), as before.
    subscriber_dtls_client: bool = True


@dataclass
class RecordingConfig:
    # Recording policy (docs/recording.md, "When a lesson is recorded"). enabled: the master
    # switch; off, no lesson is ever recorded. On: a scheduled lesson is recorded when its
    # "recording" field is true (new lessons take their bureau's default, on unless the bureau
    # turned it off), the demo lesson when demo_lesson is true, and every other room too when
    # every_lesson is true (ad-hoc lessons from hand-made tokens; tests).
    enabled: bool = True
    demo_lesson: bool = True
    every_lesson: bool = False
    # Retention: a recording older than this many days (counted from its end) is deleted by a
    # sweep every retention_sweep_s; 0 keeps recordings forever.
    retention_days: float = 180.0
    retention_sweep_s: float = 3600.0
    # Free-disk guard on the recordings volume: no recorder starts, and running ones are
    # stopped cleanly, while free space is under min_free_bytes or under min_free_percent of
    # the volume; checked every disk_check_s. Recording resumes once there is room again.
    min_free_bytes: int = 2 * 1024**3
    min_free_percent: float = 5.0
    disk_check_s: float = 5.0
    segment_seconds: float = 2.0
    # A recording ends when no classroom has been in the lesson for this long (they reconnect).
    end_grace_s: float = 60.0
    # The recorder processes' own log level (their start-up timeline is logged at INFO).
    log_level: str = "WARNING"
    # Keep one recorder process started ahead (imports done) for the next lesson to record: its
    # recording starts without a process start-up. On a cluster node it is started with the node
    # (a lesson moved here after a node's death resumes its recording within a second); on a
    # single node after the first recording starts. False: every recorder starts cold.
    standby_recorder: bool = True


@dataclass
class AnalyticsConfig:
    interval_s: float = 30.0


@dataclass
class RedisConfig:
    # empty: embedded single-node routing, no Redis. "redis://HOST:6379/0": this process is one
    # node of a cluster (docs/operations.md, "Cluster"). --redis, CLASSROOM_REDIS_URL.
    url: str = ""
    # this node's id in the cluster, unique (default: <hostname>-<port>). --node-id.
    node_id: str = ""
    # Redis' password, never in a URL on a command line: a 0600 file or CLASSROOM_REDIS_PASSWORD.
    password: str = ""
    password_file: str = ""
    heartbeat_s: float = 1.0  # a node's registry entry is written this often ...
    ttl_s: float = 3.0  # ... and expires after this long without a heartbeat (the node is dead)
    prefix: str = "classroom:"  # every key of this installation starts with it
    # false: new lessons are not placed here (drain a node before maintenance, or a signaling-only
    # node that relays every classroom to the nodes that hold the lessons). CLASSROOM_REDIS_TAKES_LESSONS.
    takes_lessons: bool = True


@dataclass
class DatabaseConfig:
    # The schedule database. Empty: SQLite, schedule.sqlite3 in the data dir (one machine; several
    # node processes on it share the file). "postgresql://user@host:5432/dbname": PostgreSQL, for
    # nodes on several machines (docs/operations.md). --database, CLASSROOM_DATABASE_URL.
    url: str = ""
    # PostgreSQL's password, never in the URL on a command line: a 0600 file (e.g. a compose or
    # Kubernetes secret) in password_file (CLASSROOM_DATABASE_PASSWORD_FILE), or the environment
    # (CLASSROOM_DATABASE_PASSWORD, or libpq's own PGPASSWORD / PGPASSFILE / ~/.pgpass).
    password: str = ""
    password_file: str = ""


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    # What unauthenticated peers may cost: timeouts, connection caps, API-key attempt limits
    # (signaling/limits.py, docs/security.md).
    limits: Limits = field(default_factory=Limits)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)


class ConfigError(ValueError):
    pass


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"not a boolean: {value!r}")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, list):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _apply(section: Any, values: dict[str, Any], where: str) -> None:
    names = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: expected a mapping")
            _apply(current, value, f"{where}.{key}")
        else:
            try:
                if isinstance(value, str) and not isinstance(current, str):
                    value = _coerce(value, current)
                value = _check_type(value, current)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
            setattr(section, key, value)


def _check_type(value: Any, current: Any) -> Any:
    """Accept ``value`` only if it has the type of the default it replaces."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {value!r}")
    elif isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
    elif isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        value = float(value)
    elif isinstance(current, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {value!r}")
    elif isinstance(current, str) and not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    config = Config()
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        _apply(config, raw, "config")
    env = dict(os.environ) if env is None else env
    for key, value in env.items():
        if not key.startswith("CLASSROOM_"):
            continue
        parts = key[len("CLASSROOM_") :].lower().split("_", 1)
        if len(parts) != 2 or not hasattr(config, parts[0]):
            continue
        section = getattr(config, parts[0])
        if not dataclasses.is_dataclass(section) or not hasattr(section, parts[1]):
            continue
        try:
            setattr(section, parts[1], _coerce(value, getattr(section, parts[1])))
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from exc
    if config.media.turn_secret_file:
        config.media.turn_secret = read_secret_file(config.media.turn_secret_file, "media.turn_secret_file")
    if config.redis.password_file:
        config.redis.password = read_secret_file(config.redis.password_file, "redis.password_file")
    if config.redis.url and not config.redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis.url: expected redis://HOST:PORT/DB, got {config.redis.url.split(':', 1)[0]!r}…")
    if not 0 < config.redis.heartbeat_s < config.redis.ttl_s:
        raise ConfigError("redis: heartbeat_s must be above 0 and below ttl_s")
    try:
        IceServers.from_media(config.media)  # a malformed TURN URL, or one without a secret
    except TurnConfigError as exc:
        raise ConfigError(str(exc)) from None
    if config.database.password_file:
        config.database.password = read_secret_file(config.database.password_file, "database.password_file")
    check_database_url(config.database.url, "database.url")
    if not 0 <= config.media.udp_port <= 65535:
        raise ConfigError(f"media.udp_port: expected 0..65535, got {config.media.udp_port}")
    return config


def check_database_url(url: str, what: str) -> None:
    """Refuse a schedule database that is neither empty (SQLite), ``sqlite:///FILE`` nor a
    ``postgresql://`` URL, so a typo is an error at start and not a file named after it."""
    if url and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ConfigError(f"{what}: expected postgresql://… (or sqlite:///FILE), got {url.split(':', 1)[0]!r}…")


def read_secret_file(path: str | Path, what: str) -> str:
    """A secret kept in a file (its first line, stripped). A file others may read is used but
    warned about: such a secret is only as private as the file."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc}") from None
    secret = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise ConfigError(f"{what}: {path} is empty")
    if mode & 0o077:
        import logging

        logging.getLogger("classroom.config").warning(
            "%s: %s is readable by other users (mode %o); make it 0600", what, path, mode & 0o777
        )
    return secret
