"""The schedule store's database: one small interface, two implementations.

:class:`SqliteDatabase` (the default: one file in the data dir, WAL, so several node processes on
one machine share it) and :class:`PostgresDatabase` (``--database postgresql://…``, psycopg 3, for
nodes on several machines). :class:`signaling.schedule.store.ScheduleStore` writes its SQL once,
in SQLite's dialect with ``?`` placeholders; the PostgreSQL side rewrites placeholders per
statement and the schema (migrations) with :func:`postgres_ddl`.

Both are synchronous and called from the event loop, as the SQLite store always was: every query
is small and indexed. PostgreSQL is a network round trip, so its connection is bounded
(``connect_timeout``, ``statement_timeout``, ``lock_timeout``, TCP keepalive and
``tcp_user_timeout``): a slow or vanished server costs a bounded stall and a clear
``503 database_unavailable``, never a hang (docs/operations.md, "Schedule database").
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from .errors import ApiError

log = logging.getLogger(__name__)

DB_FILENAME = "schedule.sqlite3"
# Every schedule write takes this transaction-scoped advisory lock on PostgreSQL: writes are
# serialised across all nodes, as SQLite's BEGIN IMMEDIATE serialises them across processes, so
# a conflict check and the insert it allows cannot interleave with another node's.
PG_WRITE_LOCK = 0x5C4ED01E
# Bounds on one PostgreSQL call made from the event loop (milliseconds / seconds).
PG_STATEMENT_TIMEOUT_MS = 2000
PG_LOCK_TIMEOUT_MS = 2000
PG_CONNECT_TIMEOUT_S = 3
PG_TCP_USER_TIMEOUT_MS = 3000


class IntegrityError(Exception):
    """A constraint of the schema refused a write (either backend)."""


class DatabaseUnavailable(ApiError):
    """The database cannot be reached (PostgreSQL down, network gone): 503, retry later."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "database_unavailable", message, headers={"Retry-After": "2"})


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """What the store needs of a database. Rows support ``row[0]``, ``row["name"]`` and ``dict(row)``."""

    dialect: str  # "sqlite" or "postgresql"
    where: str  # for logs: the file, or the URL without its password
    failures: int  # connection failures seen (logged and counted)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def transaction(self) -> Any: ...  # a context manager: one write transaction

    def schema_version(self) -> int: ...

    def set_schema_version(self, version: int) -> None: ...  # inside a transaction

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------ SQLite
def _private_db_files(path: Path) -> None:
    """The database holds the administrators' key hashes and the whole schedule: create it
    0600 before SQLite opens it (its ``-wal`` and ``-shm`` files take the database file's mode)
    and take group/other access away from an existing one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.chmod(f"{path}{suffix}", 0o600)
        except FileNotFoundError:
            pass


class _SqliteCursor:
    """sqlite3's cursor with the store's own :class:`IntegrityError`."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


def _set_wal(conn: sqlite3.Connection, timeout: float = 15.0) -> None:
    """``journal_mode=WAL``, waiting for another process that opens the same file at the same
    moment (several nodes started together on one machine): switching the journal mode needs
    the file to itself, and SQLite answers "database is locked" at once, without its busy
    handler, while another connection is doing the same."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class SqliteDatabase:
    """One SQLite file in WAL mode; writes are ``BEGIN IMMEDIATE`` (one writer at a time across
    every process using the file, others wait up to ``busy_timeout``)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / DB_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        _private_db_files(path)
        self.path = path
        self.where = str(path)
        self.failures = 0
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=5000")
        _set_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return _SqliteCursor(self._conn.execute(sql, tuple(params)))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self._conn.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        self._conn.close()


# -------------------------------------------------------------------------------- PostgreSQL
_PG_TYPES = [
    (
        re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.I),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    # SQLite's INTEGER and REAL are 8 bytes, PostgreSQL's INTEGER and REAL 4 (ms timestamps overflow)
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\bDATETIME\b", re.I), "TEXT"),
]


def postgres_ddl(sql: str) -> str:
    """A migration written for SQLite, in PostgreSQL's types (timestamps stay float seconds)."""
    for pattern, replacement in _PG_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


def postgres_params(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (a literal ``%`` doubled). The store's SQL has no
    ``?`` inside string literals."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Row:
    """A PostgreSQL row that reads like ``sqlite3.Row``: by position, by name, ``dict(row)``."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self._values)


def _row_factory(cursor: Any) -> Any:
    index = {col.name: i for i, col in enumerate(cursor.description or ())}
    return lambda values: _Row(values, index)


def redact(url: str) -> str:
    """The URL without its password (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class PostgresDatabase:
    """One psycopg 3 connection (autocommit; explicit transactions).

    The first connection is made at start (a failure stops the server with the reason). A
    connection lost later is re-opened by a background thread, never on the event loop: until
    it is back every call fails at once with ``503 database_unavailable`` (counted in
    :attr:`failures`, logged once per outage).

    The password comes from ``password`` (the 0600 file ``database.password_file``), else from
    libpq itself: ``PGPASSWORD``, ``PGPASSFILE`` or ``~/.pgpass`` (libpq refuses a pgpass file
    others can read). It is never needed in the URL."""

    dialect = "postgresql"
    RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, url: str, password: str | None = None) -> None:
        import psycopg  # a dependency, imported only when PostgreSQL is used

        self._psycopg = psycopg
        self.url = url
        self.where = redact(url)
        self._password = password
        self.failures = 0
        self.reconnects = 0
        self._lock = threading.RLock()
        self._in_tx = False
        self._closed = False
        self._reconnecting: threading.Thread | None = None
        self._down = False  # an outage is being reported (logged once)
        try:
            self._conn: Any = self._new_connection()
        except psycopg.Error as exc:
            self._failed(exc)

    def _new_connection(self) -> Any:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
            "application_name": "classroom",
            "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} -c lock_timeout={PG_LOCK_TIMEOUT_MS}"
            " -c TimeZone=UTC",
            "row_factory": _row_factory,
        }
        if self._password is not None:
            kwargs["password"] = self._password
        return self._psycopg.connect(self.url, **kwargs)

    def _failed(self, exc: BaseException | None, message: str = "") -> None:
        self.failures += 1
        if not self._down:
            self._down = True
            # psycopg's messages name host and user, never the password
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0] if exc is not None else message
            log.error("schedule database %s unavailable: %s", self.where, reason)
        raise DatabaseUnavailable("the schedule database is unavailable; try again shortly") from exc

    def _reconnect_loop(self) -> None:
        attempt = 0
        while not self._closed:
            try:
                conn = self._new_connection()
            except self._psycopg.Error as exc:
                delay = self.RECONNECT_DELAYS_S[min(attempt, len(self.RECONNECT_DELAYS_S) - 1)]
                attempt += 1
                log.debug("schedule database %s: reconnect failed (%s), next try in %.1f s", self.where, exc, delay)
                time.sleep(delay)
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conn = conn
                self._down = False
                self.reconnects += 1
            log.warning("schedule database %s: connection restored", self.where)
            return

    def _live(self) -> Any:
        conn = self._conn
        if not (conn.closed or conn.broken):
            return conn
        if self._reconnecting is None or not self._reconnecting.is_alive():
            self._reconnecting = threading.Thread(target=self._reconnect_loop, name="pg-reconnect", daemon=True)
            self._reconnecting.start()
        self._failed(None, "the connection was lost; reconnecting in the background")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        psycopg = self._psycopg
        with self._lock:
            conn = self._live()
            try:
                # a bool is an INTEGER 0/1 in the schema (as SQLite stores it), never a boolean
                values = tuple(int(v) if isinstance(v, bool) else v for v in params)
                cursor: Cursor = conn.execute(postgres_params(sql), values)
                return cursor
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(str(exc).strip()) from exc
            except psycopg.OperationalError as exc:
                if conn.broken or conn.closed:
                    self._failed(exc)  # an outage: logged once, reconnected in the background
                # statement_timeout / lock_timeout: the connection is fine, this call was cut short
                self.failures += 1
                log.warning("schedule database %s: call cut short: %s", self.where, str(exc).strip())
                raise DatabaseUnavailable("the schedule database is too slow right now; try again shortly") from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self.execute("BEGIN")
            self._in_tx = True
            try:
                self.execute("SELECT pg_advisory_xact_lock(?)", (PG_WRITE_LOCK,))
                yield
            except BaseException:
                self._in_tx = False
                if not self._conn.broken:
                    try:
                        self._conn.execute("ROLLBACK")
                    except self._psycopg.Error:
                        log.warning("schedule database %s: rollback failed", self.where)
                raise
            else:
                self._in_tx = False
                self.execute("COMMIT")

    def schema_version(self) -> int:
        if self.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        row = self.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row is not None else 0

    def set_schema_version(self, version: int) -> None:
        self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        self.execute("DELETE FROM schema_version")
        self.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()


def open_database(target: str | Path, password: str | None = None) -> Database:
    """``postgresql://…`` → PostgreSQL; ``sqlite:///FILE`` or anything else: an SQLite file, or
    a directory (the data dir) holding ``schedule.sqlite3``."""
    if isinstance(target, str) and is_postgres_url(target):
        return PostgresDatabase(target, password)
    text = str(target)
    if text.startswith("sqlite:///"):  # as SQLAlchemy writes it: sqlite:///relative, sqlite:////absolute
        text = text[len("sqlite:///") :]
    return SqliteDatabase(Path(text))
