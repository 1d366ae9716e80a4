"""The ``classroom`` command: serve, record, composite, analyze."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence


def _serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="classroom serve",
        description="Run signaling + SFU (+ schedule API, recorder launcher) in one process.",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8080)")
    parser.add_argument("--data-dir", help="where the database, secrets and recordings live")
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--no-demo", action="store_true", help="do not create the demo lesson")
    parser.add_argument("--tls-cert", metavar="FILE", help="HTTPS certificate (PEM, may hold the chain)")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM, unencrypted)")
    parser.add_argument("--tls", choices=("auto", "on", "off"),
                        help="auto (default): HTTPS with a generated certificate when bound to a non-loopback "
                             "address, plain HTTP on loopback; on: always HTTPS; off: never")
    parser.add_argument("--public-url", metavar="URL",
                        help="base URL of the links classrooms open (default: derived from host, port and TLS)")
    parser.add_argument("--database", metavar="URL",
                        help="schedule database: postgresql://USER@HOST:PORT/DB for several machines (the password "
                             "from database.password_file, CLASSROOM_DATABASE_PASSWORD or PGPASSFILE, never here); "
                             "default: SQLite in the data dir")
    parser.add_argument("--redis", metavar="URL",
                        help="redis://HOST:PORT/DB: this process is one node of a cluster coordinated through Redis "
                             "(the password from redis.password_file or CLASSROOM_REDIS_PASSWORD, never here)")
    parser.add_argument("--node-id", metavar="ID", help="this node's id in the cluster (default: <hostname>-<port>)")
    parser.add_argument("--shared-port", type=int, metavar="P",
                        help="also listen on P with SO_REUSEPORT, shared by the nodes of one machine; links use P "
                             "(classroom cluster sets it)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("text", "json"),
                        help="text (default) or json: one JSON object per line with lesson/classroom/participant")
    args = parser.parse_args(argv)

    from classroom.config import ConfigError, check_database_url, load_config
    from classroom.server import run_server

    try:
        config = load_config(args.config)
        if args.database:
            check_database_url(args.database, "--database")
            if _has_password(args.database):
                raise ConfigError("--database: a password on the command line is visible to every user (ps); "
                                  "use database.password_file, CLASSROOM_DATABASE_PASSWORD or PGPASSFILE")
            config.database.url = args.database
        if args.redis:
            if _has_password(args.redis):
                raise ConfigError("--redis: a password on the command line is visible to every user (ps); "
                                  "use redis.password_file or CLASSROOM_REDIS_PASSWORD")
            if not args.redis.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError(f"--redis: expected redis://HOST:PORT/DB, got {args.redis!r}")
            config.redis.url = args.redis
        if args.node_id:
            config.redis.node_id = args.node_id
        if args.shared_port is not None:
            config.server.shared_port = args.shared_port
    except ConfigError as exc:
        print(f"classroom serve: {exc}", file=sys.stderr)
        return 2
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    if args.data_dir:
        config.server.data_dir = args.data_dir
    if args.no_demo:
        config.server.demo_lesson = False
    if args.tls_cert:
        config.server.tls_cert = args.tls_cert
    if args.tls_key:
        config.server.tls_key = args.tls_key
    if args.tls:
        config.server.tls = args.tls
    if args.public_url:
        config.server.public_url = args.public_url
    if args.log_format:
        config.server.log_format = args.log_format
    return run_server(config, log_level=args.log_level)


def _has_password(url: str) -> bool:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    return parts.password is not None or "password" in parse_qs(parts.query)


def worker_logging(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """The server's JSON log format for the recorder processes it starts (``classroom record``
    inherits ``CLASSROOM_SERVER_LOG_FORMAT`` and writes to the server's stderr), so that one log
    stream stays one format; its ``--log-level`` still applies. True when JSON logging was set up."""
    if env.get("CLASSROOM_SERVER_LOG_FORMAT", "").strip().lower() != "json":
        return False
    from classroom import logformat

    args = list(argv)
    level = args[args.index("--log-level") + 1] if "--log-level" in args[:-1] else "INFO"
    logformat.configure(level, "json")  # the worker's own logging.basicConfig is then a no-op
    return True


def _delegate(module: str, func: str, argv: Sequence[str]) -> int:
    import importlib

    mod = importlib.import_module(module)
    result = getattr(mod, func)(list(argv))
    return int(result or 0)


COMMANDS = {
    "serve": "start the server with a demo lesson",
    "record": "record a lesson as a recorder participant",
    "composite": "render a recording into one MP4 following the spotlight",
    "analyze": "classroom-behaviour analysis of a recording directory",
    "admin": "bureau administrators: create-admin, list-bureaus, revoke-admin",
    "cluster": "several node processes on this machine, coordinated through Redis (one per core)",
    "agent": "room hardware: join this classroom's scheduled lessons by itself (device credential)",
    "healthcheck": "exit 0 when this machine's server answers /healthz (the container health probe)",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: classroom COMMAND [options]\n\ncommands:")
        for name, text in COMMANDS.items():
            print(f"  {name:<10} {text}")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return _serve(rest)
    if command == "cluster":
        return _delegate("classroom.cluster", "main", rest)
    if command == "record":
        worker_logging(rest, os.environ)
        return _delegate("recorder.cli", "record_main", rest)
    if command == "composite":
        return _delegate("recorder.cli", "composite_main", rest)
    if command == "admin":
        return _delegate("signaling.schedule.cli", "main", rest)
    if command == "analyze":
        return _delegate("analytics.cli", "main", rest)
    if command == "agent":
        return _delegate("agent.cli", "main", rest)
    if command == "healthcheck":
        return _delegate("classroom.healthcheck", "main", rest)
    print(f"classroom: unknown command {command!r} (try --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
