"""The schedule's store: bureaus, schools, classrooms, teachers, lessons, join history.

Behind it a :class:`signaling.schedule.database.Database`: SQLite by default (one file,
``schedule.sqlite3`` under the data directory, WAL mode, the schema version in ``PRAGMA
user_version``) or PostgreSQL (``--database postgresql://…``, the version in a
``schema_version`` table). :data:`MIGRATIONS` are applied in order at open, each in one
transaction that re-reads the version first, so several nodes starting at once apply each
one exactly once; they are written in SQLite's dialect and translated for PostgreSQL
(:func:`signaling.schedule.database.postgres_ddl`; :data:`PG_MIGRATIONS` overrides one where
the translation is not enough). Every write is a single transaction (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL a transaction holding one advisory lock): validation and conflict
checks run inside it, so a refused request leaves nothing half-written and two nodes never
book the same classroom twice.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from datetime import tzinfo as TzInfo
from pathlib import Path
from typing import Any, TypeVar, cast

from signaling.tokens import TokenClaims, TokenError

from . import auth
from .database import DB_FILENAME, Database, DatabaseUnavailable, open_database, postgres_ddl
from .errors import ApiError, bad_request, not_found
from .models import (
    CLASSROOM_KINDS,
    Admin,
    AdminInfo,
    Bureau,
    Classroom,
    Device,
    JoinEvent,
    Lesson,
    LessonSpec,
    Occurrence,
    OccurrenceView,
    Recurrence,
    School,
    Teacher,
)
from .notes_schema import NOTES_MIGRATION
from .timing import (
    JOIN_AFTER_S,
    expand,
    first_overlap,
    format_time,
    split_occurrence_id,
    token_window,
    zone,
)

log = logging.getLogger(__name__)

__all__ = ["DB_FILENAME", "DEFAULT_TIMEZONE", "MIGRATIONS", "PG_MIGRATIONS", "ScheduleStore"]

DEFAULT_TIMEZONE = "Asia/Shanghai"

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE bureaus (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        timezone TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE admins (
        id TEXT PRIMARY KEY,
        bureau_id TEXT NOT NULL REFERENCES bureaus(id),
        name TEXT NOT NULL,
        key_salt BLOB NOT NULL,
        key_hash BLOB NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE schools (
        id TEXT PRIMARY KEY,
        bureau_id TEXT NOT NULL REFERENCES bureaus(id),
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX schools_bureau ON schools(bureau_id);
    CREATE TABLE classrooms (
        id TEXT PRIMARY KEY,
        school_id TEXT NOT NULL REFERENCES schools(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('browser', 'hardware')),
        created_at REAL NOT NULL
    );
    CREATE INDEX classrooms_school ON classrooms(school_id);
    CREATE TABLE teachers (
        id TEXT PRIMARY KEY,
        school_id TEXT NOT NULL REFERENCES schools(id),
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE lessons (
        id TEXT PRIMARY KEY,
        bureau_id TEXT NOT NULL REFERENCES bureaus(id),
        subject TEXT NOT NULL,
        title TEXT NOT NULL,
        lead_classroom_id TEXT NOT NULL REFERENCES classrooms(id),
        lead_teacher_id TEXT REFERENCES teachers(id),
        start_ts REAL NOT NULL,
        end_ts REAL NOT NULL,
        span_end_ts REAL NOT NULL,
        recurrence_until TEXT,
        recording INTEGER NOT NULL DEFAULT 0,
        cancelled_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        CHECK (end_ts > start_ts)
    );
    CREATE INDEX lessons_bureau_time ON lessons(bureau_id, start_ts);
    CREATE INDEX lessons_lead ON lessons(lead_classroom_id);
    CREATE INDEX lessons_teacher ON lessons(lead_teacher_id);
    CREATE TABLE lesson_remotes (
        lesson_id TEXT NOT NULL REFERENCES lessons(id),
        classroom_id TEXT NOT NULL REFERENCES classrooms(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (lesson_id, classroom_id)
    );
    CREATE INDEX lesson_remotes_classroom ON lesson_remotes(classroom_id);
    CREATE TABLE lesson_exceptions (
        lesson_id TEXT NOT NULL REFERENCES lessons(id),
        day TEXT NOT NULL,
        PRIMARY KEY (lesson_id, day)
    );
    CREATE TABLE occurrences (
        occurrence_id TEXT PRIMARY KEY,
        lesson_id TEXT NOT NULL REFERENCES lessons(id),
        status TEXT NOT NULL CHECK (status IN ('live', 'ended')),
        started_at REAL,
        ended_at REAL
    );
    CREATE TABLE join_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        occurrence_id TEXT NOT NULL,
        lesson_id TEXT NOT NULL REFERENCES lessons(id),
        classroom_id TEXT NOT NULL,
        joined_at REAL NOT NULL,
        left_at REAL
    );
    CREATE INDEX join_events_occurrence ON join_events(occurrence_id);
    """,
    # 2: district set-up: lead-capable classrooms, room hardware with its own credential
    """
    ALTER TABLE classrooms ADD COLUMN lead_capable INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        classroom_id TEXT NOT NULL REFERENCES classrooms(id),
        name TEXT NOT NULL,
        key_salt BLOB NOT NULL,
        key_hash BLOB NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE INDEX devices_classroom ON devices(classroom_id);
    """,
    # 3: observation notes and each bureau's rubric (signaling/schedule/notes_schema.py)
    NOTES_MIGRATION,
]


# PostgreSQL text for a migration whose SQLite text postgres_ddl cannot translate (by version).
PG_MIGRATIONS: dict[int, str] = {}


def migration_sql(version: int, dialect: str) -> str:
    """The script of schema ``version`` (1-based) for ``dialect``."""
    script = MIGRATIONS[version - 1]
    if dialect == "postgresql":
        return PG_MIGRATIONS.get(version) or postgres_ddl(script)
    return script


_F = TypeVar("_F", bound=Callable[..., Any])


def _goes_on_without_database(default: Any) -> Callable[[_F], _F]:
    """For the calls a live lesson makes (admit, join/leave records, recording and expected
    rooms): while the database is unavailable (PostgreSQL down) the lesson goes on — the token's
    signature and validity window were checked already, the join record is lost — logged and
    counted in ``ScheduleStore.outage_skips``, instead of failing every classroom's join."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(self: ScheduleStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except DatabaseUnavailable:
                self.outage_skips += 1
                what = getattr(args[0], "lesson_id", args[0]) if args else ""
                log.warning("schedule database unavailable: %s(%s) went ahead without it", fn.__name__, what)
                return default

        return cast(_F, inner)

    return wrap


def _classroom(row: Any) -> Classroom:
    values = dict(row)
    values["lead_capable"] = bool(values["lead_capable"])
    return Classroom(**values)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


class ScheduleStore:
    """All persistent schedule state. Synchronous calls (from the event loop, as always): every
    query is small and indexed; PostgreSQL's calls are bounded (signaling/schedule/database.py)."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        # the SQLite file (the recording policy and tests find the data dir by it); None on PostgreSQL
        self.path: Path | None = getattr(db, "path", None)
        self.clock = clock
        self.outage_skips = 0  # live-lesson calls that went ahead without the database
        self._lock = threading.RLock()
        self._key_cache: dict[str, Admin] = {}
        self._device_cache: dict[str, Device] = {}
        self._tz_cache: dict[str, TzInfo] = {}

    # ---------------------------------------------------------------- opening, migrations
    @classmethod
    def open(
        cls,
        target: str | Path,
        clock: Callable[[], float] = time.time,
        password: str | None = None,
        close_stale_joins: bool = True,
    ) -> ScheduleStore:
        """Open (creating and migrating) the store. ``target``: a ``postgresql://`` URL (its
        ``password``, if any, given apart: never in the URL), an SQLite database file, or a
        directory (the data dir) in which ``schedule.sqlite3`` is used. ``close_stale_joins``:
        a single node closes the join records a previous run left open; a node of a cluster
        (whose database others share) must not close its live neighbours'."""
        db = open_database(target, password)
        store = cls(db, clock)
        try:
            store._migrate()
            if close_stale_joins:
                store._close_stale_joins()
        except BaseException:
            db.close()
            raise
        return store

    @property
    def database(self) -> Database:
        return self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.schema_version()

    def _migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction that re-reads the version
        under the write lock: a second process starting at the same time waits, then finds the
        work done (idempotent)."""
        while True:
            with self._tx() as db:
                current = db.schema_version()
                if current > len(MIGRATIONS):
                    raise RuntimeError(
                        f"{db.where}: schema version {current} is newer than this program ({len(MIGRATIONS)})"
                    )
                if current == len(MIGRATIONS):
                    return
                version = current + 1
                for statement in migration_sql(version, db.dialect).split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.set_schema_version(version)
            log.info("schedule database %s migrated to version %d", db.where, version)

    def _close_stale_joins(self) -> None:
        """After a restart nobody is connected: close the join records left open."""
        with self._tx() as db:
            db.execute("UPDATE join_events SET left_at = ? WHERE left_at IS NULL", (self.clock(),))

    @contextmanager
    def _tx(self) -> Iterator[Database]:
        with self._lock, self._db.transaction():
            yield self._db

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # ---------------------------------------------------------------- bureaus and admins
    def create_bureau(self, name: str, timezone: str = DEFAULT_TIMEZONE) -> Bureau:
        zone(timezone)
        bureau = Bureau(_new_id("bur"), name, timezone, self.clock())
        with self._tx() as db:
            if db.execute("SELECT 1 FROM bureaus WHERE name = ?", (name,)).fetchone():
                raise ApiError(409, "duplicate", f"a bureau named {name!r} exists")
            db.execute(
                "INSERT INTO bureaus (id, name, timezone, created_at) VALUES (?, ?, ?, ?)",
                (bureau.id, bureau.name, bureau.timezone, bureau.created_at),
            )
        return bureau

    def get_bureau(self, bureau_id: str) -> Bureau | None:
        rows = self._q("SELECT * FROM bureaus WHERE id = ?", (bureau_id,))
        return Bureau(**dict(rows[0])) if rows else None

    def bureau_by_name(self, name: str) -> Bureau | None:
        rows = self._q("SELECT * FROM bureaus WHERE name = ?", (name,))
        return Bureau(**dict(rows[0])) if rows else None

    def list_bureaus(self) -> list[Bureau]:
        return [Bureau(**dict(r)) for r in self._q("SELECT * FROM bureaus ORDER BY created_at")]

    def tz(self, bureau_id: str) -> TzInfo:
        cached = self._tz_cache.get(bureau_id)
        if cached is None:
            bureau = self.get_bureau(bureau_id)
            cached = zone(bureau.timezone if bureau else DEFAULT_TIMEZONE)
            self._tz_cache[bureau_id] = cached
        return cached

    def create_admin(
        self, bureau_id: str, name: str, credential: auth.NewCredential | None = None
    ) -> tuple[Admin, str]:
        """A new administrator of ``bureau_id``; returns the record and its API key (the only
        time the key exists in clear). The API passes a ``credential`` hashed off the event loop
        (``KeyGate.new_credential``); without one it is made (and hashed) here."""
        if self.get_bureau(bureau_id) is None:
            raise not_found("bureau")
        cred = credential or auth.new_admin_credential()
        admin = Admin(cred.id, bureau_id, name, self.clock())
        key, salt, digest = cred.key, cred.salt, cred.digest
        with self._tx() as db:
            db.execute(
                "INSERT INTO admins (id, bureau_id, name, key_salt, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (admin.id, bureau_id, name, salt, digest, admin.created_at),
            )
        return admin, key

    def revoke_admin(self, admin_id: str) -> bool:
        """Disable an administrator's key; ``False`` when there is no such (unrevoked) admin.
        A running server sees it on the key's next use: :meth:`cached_admin` asks the database
        every time, so a revoke by another process (``classroom admin revoke-admin``) counts."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE admins SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (self.clock(), admin_id)
            ).rowcount
        self._key_cache.clear()
        return bool(changed)

    def _active(self, admin_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM admins WHERE id = ? AND revoked_at IS NULL", (admin_id,)))

    def cached_admin(self, key: str) -> Admin | None:
        """The administrator of a key verified before and not revoked since (no hashing)."""
        ck = auth.cache_key(key)
        cached = self._key_cache.get(ck)
        if cached is None:
            return None
        if not self._active(cached.id):
            self._key_cache.pop(ck, None)
            return None
        return cached

    def key_record(self, admin_id: str) -> tuple[Admin, bytes, bytes] | None:
        """An active administrator with its key's salt and hash (for :func:`auth.check_key`)."""
        rows = self._q("SELECT * FROM admins WHERE id = ? AND revoked_at IS NULL", (admin_id,))
        if not rows:
            return None
        row = rows[0]
        admin = Admin(row["id"], row["bureau_id"], row["name"], row["created_at"])
        return admin, bytes(row["key_salt"]), bytes(row["key_hash"])

    def remember_key(self, key: str, admin: Admin) -> None:
        if len(self._key_cache) > 1000:
            self._key_cache.clear()
        self._key_cache[auth.cache_key(key)] = admin

    def authenticate(self, key: str) -> Admin | None:
        """The administrator an API key belongs to, or ``None``. Synchronous: it may hash on
        the calling thread (the API uses :class:`signaling.schedule.keygate.KeyGate`)."""
        cached = self.cached_admin(key) if auth.well_formed(key) else None
        if cached is not None:
            return cached
        admin_id = auth.admin_id_of(key)
        if admin_id is None:
            return None
        record = self.key_record(admin_id)
        if record is None:
            return None
        admin, salt, digest = record
        if not auth.check_key(key, salt, digest):
            return None
        self.remember_key(key, admin)
        return admin

    def ensure_bootstrap_admin(self) -> str | None:
        """On a fresh data dir: create a first bureau and an administrator, and return the
        administrator's API key (once; afterwards ``None``)."""
        if self._q("SELECT 1 FROM admins LIMIT 1"):
            return None
        # Hashed before the transaction (scrypt is slow). Check and create in one write
        # transaction: on PostgreSQL it holds the schedule's write lock, so two nodes starting
        # at once on one database make one bureau and one administrator, and the other gets None.
        cred = auth.new_admin_credential()
        now = self.clock()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM admins LIMIT 1").fetchone():
                return None
            row = db.execute("SELECT id FROM bureaus WHERE name = ?", ("Default bureau",)).fetchone()
            if row is None:
                bureau_id = _new_id("bur")
                db.execute(
                    "INSERT INTO bureaus (id, name, timezone, created_at) VALUES (?, ?, ?, ?)",
                    (bureau_id, "Default bureau", DEFAULT_TIMEZONE, now),
                )
            else:
                bureau_id = row[0]
            db.execute(
                "INSERT INTO admins (id, bureau_id, name, key_salt, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (cred.id, bureau_id, "bootstrap", cred.salt, cred.digest, now),
            )
        return cred.key

    def list_admins(self, bureau_id: str) -> list[AdminInfo]:
        rows = self._q(
            "SELECT id, name, created_at, revoked_at FROM admins WHERE bureau_id = ? ORDER BY created_at, id",
            (bureau_id,),
        )
        return [AdminInfo(**dict(r)) for r in rows]

    def revoke_bureau_admin(self, bureau_id: str, admin_id: str) -> None:
        """Revoke an administrator of ``bureau_id`` (404 for another bureau's or an unknown id)."""
        if not self._q("SELECT 1 FROM admins WHERE id = ? AND bureau_id = ?", (admin_id, bureau_id)):
            raise not_found("administrator")
        if not self.revoke_admin(admin_id):
            raise ApiError(409, "already_revoked", "this administrator's key is already revoked")

    # ---------------------------------------------------------------- devices (room hardware)
    _DEVICE_SQL = (
        "SELECT d.id, s.bureau_id, d.classroom_id, d.name, d.created_at, d.revoked_at FROM devices d"
        " JOIN classrooms c ON c.id = d.classroom_id JOIN schools s ON s.id = c.school_id"
    )

    def create_device(
        self, bureau_id: str, classroom_id: str, name: str, credential: auth.NewCredential | None = None
    ) -> tuple[Device, str]:
        """A device bound to a classroom; returns it with its credential (the only time the
        credential exists in clear: only a salted scrypt hash is stored). ``credential``: as
        for :meth:`create_admin`."""
        self.check_classroom(bureau_id, classroom_id)
        cred = credential or auth.new_device_credential()
        device = Device(cred.id, bureau_id, classroom_id, name, self.clock())
        key, salt, digest = cred.key, cred.salt, cred.digest
        with self._tx() as db:
            db.execute(
                "INSERT INTO devices (id, classroom_id, name, key_salt, key_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (device.id, classroom_id, name, salt, digest, device.created_at),
            )
        return device, key

    def check_classroom(self, bureau_id: str, classroom_id: str) -> None:
        """400 ``unknown_classroom`` unless ``classroom_id`` is one of the bureau's classrooms."""
        if self.get_classroom(bureau_id, classroom_id) is None:
            raise bad_request("unknown_classroom", f"classroom {classroom_id!r} does not exist", field="classroom_id")

    def list_devices(self, bureau_id: str) -> list[Device]:
        rows = self._q(self._DEVICE_SQL + " WHERE s.bureau_id = ? ORDER BY d.created_at, d.id", (bureau_id,))
        return [Device(**dict(r)) for r in rows]

    def revoke_device(self, bureau_id: str, device_id: str) -> None:
        rows = self._q(self._DEVICE_SQL + " WHERE d.id = ? AND s.bureau_id = ?", (device_id, bureau_id))
        if not rows:
            raise not_found("device")
        with self._tx() as db:
            changed = db.execute(
                "UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (self.clock(), device_id)
            ).rowcount
        self._device_cache.clear()
        if not changed:
            raise ApiError(409, "already_revoked", "this device's credential is already revoked")

    def device_key_record(self, device_id: str) -> tuple[Device, bytes, bytes] | None:
        rows = self._q(
            self._DEVICE_SQL.replace("SELECT ", "SELECT d.key_salt, d.key_hash, ", 1)
            + " WHERE d.id = ? AND d.revoked_at IS NULL",
            (device_id,),
        )
        if not rows:
            return None
        row = dict(rows[0])
        salt, digest = bytes(row.pop("key_salt")), bytes(row.pop("key_hash"))
        return Device(**row), salt, digest

    def cached_device(self, key: str) -> Device | None:
        ck = auth.cache_key(key)
        cached = self._device_cache.get(ck)
        if cached is None:
            return None
        if not self._q("SELECT 1 FROM devices WHERE id = ? AND revoked_at IS NULL", (cached.id,)):
            self._device_cache.pop(ck, None)
            return None
        return cached

    def remember_device_key(self, key: str, device: Device) -> None:
        if len(self._device_cache) > 1000:
            self._device_cache.clear()
        self._device_cache[auth.cache_key(key)] = device

    # ---------------------------------------------------------------- schools, rooms, teachers
    def create_school(self, bureau_id: str, name: str) -> School:
        school = School(_new_id("sch"), bureau_id, name, self.clock())
        with self._tx() as db:
            db.execute(
                "INSERT INTO schools (id, bureau_id, name, created_at) VALUES (?, ?, ?, ?)",
                (school.id, bureau_id, name, school.created_at),
            )
        return school

    def list_schools(self, bureau_id: str) -> list[School]:
        rows = self._q("SELECT * FROM schools WHERE bureau_id = ? ORDER BY name, id", (bureau_id,))
        return [School(**dict(r)) for r in rows]

    def get_school(self, bureau_id: str, school_id: str) -> School | None:
        rows = self._q("SELECT * FROM schools WHERE id = ? AND bureau_id = ?", (school_id, bureau_id))
        return School(**dict(rows[0])) if rows else None

    def create_classroom(
        self, bureau_id: str, school_id: str, name: str, kind: str, lead_capable: bool = True
    ) -> Classroom:
        if kind not in CLASSROOM_KINDS:
            raise bad_request("invalid_field", f"kind must be one of {', '.join(CLASSROOM_KINDS)}", field="kind")
        if self.get_school(bureau_id, school_id) is None:
            raise not_found("school")
        room = Classroom(_new_id("cls"), school_id, bureau_id, name, kind, self.clock(), lead_capable)
        with self._tx() as db:
            self._insert_classroom(db, room)
        return room

    @staticmethod
    def _insert_classroom(db: Database, room: Classroom) -> None:
        db.execute(
            "INSERT INTO classrooms (id, school_id, name, kind, created_at, lead_capable) VALUES (?, ?, ?, ?, ?, ?)",
            (room.id, room.school_id, room.name, room.kind, room.created_at, int(room.lead_capable)),
        )

    def import_classrooms(
        self, bureau_id: str, rows: list[tuple[str, str, bool, str]]
    ) -> tuple[list[School], list[Classroom]]:
        """Create the classrooms ``(school name, classroom name, lead_capable, kind)`` in one
        transaction (all or none), creating schools by name when the bureau has none of that
        name. The caller validated the rows (see :mod:`signaling.schedule.csv_import`)."""
        now = self.clock()
        schools_new: list[School] = []
        rooms: list[Classroom] = []
        with self._tx() as db:
            by_name = {
                r["name"]: r["id"]
                for r in db.execute("SELECT id, name FROM schools WHERE bureau_id = ?", (bureau_id,)).fetchall()
            }
            for school_name, room_name, lead_capable, kind in rows:
                school_id = by_name.get(school_name)
                if school_id is None:
                    school = School(_new_id("sch"), bureau_id, school_name, now)
                    db.execute(
                        "INSERT INTO schools (id, bureau_id, name, created_at) VALUES (?, ?, ?, ?)",
                        (school.id, bureau_id, school.name, now),
                    )
                    by_name[school_name] = school_id = school.id
                    schools_new.append(school)
                room = Classroom(_new_id("cls"), school_id, bureau_id, room_name, kind, now, lead_capable)
                self._insert_classroom(db, room)
                rooms.append(room)
        return schools_new, rooms

    def classroom_names(self, bureau_id: str) -> tuple[set[tuple[str, str]], set[str]]:
        """The bureau's (school name, classroom name) pairs and school names (for an import)."""
        schools = {s.id: s.name for s in self.list_schools(bureau_id)}
        rooms = {(schools.get(c.school_id, ""), c.name) for c in self.list_classrooms(bureau_id)}
        return rooms, set(schools.values())

    def update_school(self, bureau_id: str, school_id: str, name: str) -> School:
        if self.get_school(bureau_id, school_id) is None:
            raise not_found("school")
        with self._tx() as db:
            db.execute("UPDATE schools SET name = ? WHERE id = ?", (name, school_id))
        school = self.get_school(bureau_id, school_id)
        assert school is not None
        return school

    def delete_school(self, bureau_id: str, school_id: str) -> None:
        """Delete an empty school (409 ``in_use`` while it has classrooms or teachers)."""
        if self.get_school(bureau_id, school_id) is None:
            raise not_found("school")
        with self._tx() as db:
            rooms = db.execute("SELECT COUNT(*) FROM classrooms WHERE school_id = ?", (school_id,)).fetchone()[0]
            teachers = db.execute("SELECT COUNT(*) FROM teachers WHERE school_id = ?", (school_id,)).fetchone()[0]
            if rooms or teachers:
                raise ApiError(
                    409,
                    "in_use",
                    f"the school still has {rooms} classroom(s) and {teachers} teacher(s): delete them first",
                    classrooms=rooms,
                    teachers=teachers,
                )
            db.execute("DELETE FROM schools WHERE id = ?", (school_id,))

    def update_classroom(
        self, bureau_id: str, classroom_id: str, name: str, kind: str, lead_capable: bool
    ) -> Classroom:
        """Rename or re-kind a classroom. Making it remote-only does not change lessons it
        already leads; new or changed lessons cannot use it as their lead."""
        if self.get_classroom(bureau_id, classroom_id) is None:
            raise not_found("classroom")
        with self._tx() as db:
            db.execute(
                "UPDATE classrooms SET name = ?, kind = ?, lead_capable = ? WHERE id = ?",
                (name, kind, int(lead_capable), classroom_id),
            )
        room = self.get_classroom(bureau_id, classroom_id)
        assert room is not None
        return room

    def delete_classroom(self, bureau_id: str, classroom_id: str) -> None:
        """Delete a classroom no lesson and no active device uses (409 ``in_use`` otherwise;
        cancel or change those lessons first: their history keeps naming the classroom)."""
        if self.get_classroom(bureau_id, classroom_id) is None:
            raise not_found("classroom")
        with self._tx() as db:
            lessons = db.execute(
                "SELECT COUNT(*) FROM lessons WHERE lead_classroom_id = ?"
                " OR id IN (SELECT lesson_id FROM lesson_remotes WHERE classroom_id = ?)",
                (classroom_id, classroom_id),
            ).fetchone()[0]
            devices = db.execute(
                "SELECT COUNT(*) FROM devices WHERE classroom_id = ? AND revoked_at IS NULL", (classroom_id,)
            ).fetchone()[0]
            if lessons or devices:
                raise ApiError(
                    409,
                    "in_use",
                    f"the classroom is used by {lessons} lesson(s) and {devices} device(s)",
                    lessons=lessons,
                    devices=devices,
                )
            db.execute("DELETE FROM devices WHERE classroom_id = ?", (classroom_id,))
            db.execute("DELETE FROM classrooms WHERE id = ?", (classroom_id,))

    def update_teacher(self, bureau_id: str, teacher_id: str, name: str) -> Teacher:
        if self.get_teacher(bureau_id, teacher_id) is None:
            raise not_found("teacher")
        with self._tx() as db:
            db.execute("UPDATE teachers SET name = ? WHERE id = ?", (name, teacher_id))
        teacher = self.get_teacher(bureau_id, teacher_id)
        assert teacher is not None
        return teacher

    def delete_teacher(self, bureau_id: str, teacher_id: str) -> None:
        if self.get_teacher(bureau_id, teacher_id) is None:
            raise not_found("teacher")
        with self._tx() as db:
            lessons = db.execute("SELECT COUNT(*) FROM lessons WHERE lead_teacher_id = ?", (teacher_id,)).fetchone()[0]
            if lessons:
                raise ApiError(409, "in_use", f"the teacher leads {lessons} lesson(s)", lessons=lessons)
            db.execute("DELETE FROM teachers WHERE id = ?", (teacher_id,))

    _CLASSROOM_SQL = (
        "SELECT c.id, c.school_id, s.bureau_id, c.name, c.kind, c.created_at, c.lead_capable"
        " FROM classrooms c JOIN schools s ON s.id = c.school_id"
    )

    def list_classrooms(self, bureau_id: str, school_id: str | None = None) -> list[Classroom]:
        sql = self._CLASSROOM_SQL + " WHERE s.bureau_id = ?"
        params: tuple[Any, ...] = (bureau_id,)
        if school_id is not None:
            sql += " AND c.school_id = ?"
            params += (school_id,)
        return [_classroom(r) for r in self._q(sql + " ORDER BY c.name, c.id", params)]

    def get_classroom(self, bureau_id: str, classroom_id: str) -> Classroom | None:
        rows = self._q(self._CLASSROOM_SQL + " WHERE c.id = ? AND s.bureau_id = ?", (classroom_id, bureau_id))
        return _classroom(rows[0]) if rows else None

    def create_teacher(self, bureau_id: str, school_id: str, name: str) -> Teacher:
        if self.get_school(bureau_id, school_id) is None:
            raise not_found("school")
        teacher = Teacher(_new_id("tch"), school_id, bureau_id, name, self.clock())
        with self._tx() as db:
            db.execute(
                "INSERT INTO teachers (id, school_id, name, created_at) VALUES (?, ?, ?, ?)",
                (teacher.id, school_id, name, teacher.created_at),
            )
        return teacher

    _TEACHER_SQL = (
        "SELECT t.id, t.school_id, s.bureau_id, t.name, t.created_at"
        " FROM teachers t JOIN schools s ON s.id = t.school_id"
    )

    def list_teachers(self, bureau_id: str, school_id: str | None = None) -> list[Teacher]:
        sql = self._TEACHER_SQL + " WHERE s.bureau_id = ?"
        params: tuple[Any, ...] = (bureau_id,)
        if school_id is not None:
            sql += " AND t.school_id = ?"
            params += (school_id,)
        return [Teacher(**dict(r)) for r in self._q(sql + " ORDER BY t.name, t.id", params)]

    def get_teacher(self, bureau_id: str, teacher_id: str) -> Teacher | None:
        rows = self._q(self._TEACHER_SQL + " WHERE t.id = ? AND s.bureau_id = ?", (teacher_id, bureau_id))
        return Teacher(**dict(rows[0])) if rows else None

    # ---------------------------------------------------------------- lessons
    def _lesson_from_row(self, row: Any) -> Lesson:
        remotes = tuple(
            r[0]
            for r in self._db.execute(
                "SELECT classroom_id FROM lesson_remotes WHERE lesson_id = ? ORDER BY position",
                (row["id"],),
            )
        )
        recurrence = None
        if row["recurrence_until"] is not None:
            exceptions = tuple(
                date.fromisoformat(r[0])
                for r in self._db.execute(
                    "SELECT day FROM lesson_exceptions WHERE lesson_id = ? ORDER BY day",
                    (row["id"],),
                )
            )
            recurrence = Recurrence(date.fromisoformat(row["recurrence_until"]), exceptions)
        return Lesson(
            id=row["id"],
            bureau_id=row["bureau_id"],
            subject=row["subject"],
            title=row["title"],
            lead_classroom_id=row["lead_classroom_id"],
            lead_teacher_id=row["lead_teacher_id"],
            remote_classroom_ids=remotes,
            start=row["start_ts"],
            end=row["end_ts"],
            recurrence=recurrence,
            recording=bool(row["recording"]),
            cancelled=row["cancelled_at"] is not None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _lessons(self, sql: str, params: tuple[Any, ...]) -> list[Lesson]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            return [self._lesson_from_row(r) for r in rows]

    def get_lesson(self, bureau_id: str, lesson_id: str) -> Lesson | None:
        found = self._lessons("SELECT * FROM lessons WHERE id = ? AND bureau_id = ?", (lesson_id, bureau_id))
        return found[0] if found else None

    def _lesson_any_bureau(self, lesson_id: str) -> Lesson | None:
        found = self._lessons("SELECT * FROM lessons WHERE id = ?", (lesson_id,))
        return found[0] if found else None

    def list_lessons(self, bureau_id: str) -> list[Lesson]:
        return self._lessons("SELECT * FROM lessons WHERE bureau_id = ? ORDER BY start_ts, id", (bureau_id,))

    def occurrences(self, lesson: Lesson) -> list[Occurrence]:
        return expand(lesson.id, lesson.start, lesson.end, lesson.recurrence, self.tz(lesson.bureau_id))

    def find_occurrence(self, lesson: Lesson, day: date | None) -> Occurrence | None:
        """The occurrence of ``lesson`` on bureau-local ``day``; ``day`` is ``None`` for the
        only occurrence of a one-off lesson (and must be given for a recurring one)."""
        if lesson.recurrence is None:
            return self.occurrences(lesson)[0] if day is None else None
        if day is None:
            return None
        for occ in self.occurrences(lesson):
            if occ.date == day:
                return occ
        return None

    def _check_refs(self, bureau_id: str, spec: LessonSpec, current: Lesson | None = None) -> None:
        for cid in (spec.lead_classroom_id, *spec.remote_classroom_ids):
            room = self.get_classroom(bureau_id, cid)
            if room is None:
                field = "lead_classroom_id" if cid == spec.lead_classroom_id else "remote_classroom_ids"
                raise bad_request("unknown_classroom", f"classroom {cid!r} does not exist in this bureau", field=field)
            # a lesson that already has this lead keeps it after the room became remote-only
            kept = current is not None and current.lead_classroom_id == cid
            if cid == spec.lead_classroom_id and not room.lead_capable and not kept:
                raise bad_request(
                    "not_lead_capable",
                    f"classroom {cid!r} is a remote classroom and cannot lead a lesson",
                    field="lead_classroom_id",
                )
        if spec.lead_teacher_id is not None:
            if self.get_teacher(bureau_id, spec.lead_teacher_id) is None:
                raise bad_request(
                    "unknown_teacher",
                    f"teacher {spec.lead_teacher_id!r} does not exist in this bureau",
                    field="lead_teacher_id",
                )

    def _conflicts(self, bureau_id: str, lesson_id: str, spec: LessonSpec) -> list[dict[str, Any]]:
        tz = self.tz(bureau_id)
        mine = expand(lesson_id, spec.start, spec.end, spec.recurrence, tz)
        if not mine:
            return []
        lo, hi = mine[0].start, max(o.end for o in mine)
        rooms = (spec.lead_classroom_id, *spec.remote_classroom_ids)
        marks = ",".join("?" for _ in rooms)
        candidates = self._lessons(
            "SELECT * FROM lessons WHERE cancelled_at IS NULL AND id != ?"
            " AND start_ts < ? AND span_end_ts > ? AND ("
            f" lead_classroom_id IN ({marks})"
            f" OR id IN (SELECT lesson_id FROM lesson_remotes WHERE classroom_id IN ({marks}))"
            " OR (lead_teacher_id IS NOT NULL AND lead_teacher_id = ?))"
            " ORDER BY start_ts, id",
            (lesson_id, hi, lo, *rooms, *rooms, spec.lead_teacher_id),
        )
        found: list[dict[str, Any]] = []
        for other in candidates:
            pair = first_overlap(mine, self.occurrences(other))
            if pair is None:
                continue
            _, theirs = pair
            shared = [c for c in rooms if c in other.classroom_ids]
            what: list[dict[str, str]] = [{"type": "classroom", "id": c} for c in shared]
            if spec.lead_teacher_id is not None and spec.lead_teacher_id == other.lead_teacher_id:
                what.append({"type": "teacher", "id": spec.lead_teacher_id})
            found.append(
                {
                    "lesson_id": other.id,
                    "occurrence_id": theirs.occurrence_id,
                    "title": other.title,
                    "start": format_time(theirs.start, tz),
                    "end": format_time(theirs.end, tz),
                    "resources": what,
                }
            )
        return found

    def _conflict_error(self, conflicts: list[dict[str, Any]]) -> ApiError:
        first = conflicts[0]
        res = ", ".join(f"{r['type']} {r['id']}" for r in first["resources"])
        return ApiError(
            409,
            "conflict",
            f"{res} already booked by lesson {first['lesson_id']} ({first['title']!r}) "
            f"from {first['start']} to {first['end']}",
            conflicts=conflicts,
        )

    def _write_lesson(self, db: Database, lesson_id: str, spec: LessonSpec) -> None:
        db.execute("DELETE FROM lesson_remotes WHERE lesson_id = ?", (lesson_id,))
        db.execute("DELETE FROM lesson_exceptions WHERE lesson_id = ?", (lesson_id,))
        for pos, cid in enumerate(spec.remote_classroom_ids):
            db.execute(
                "INSERT INTO lesson_remotes (lesson_id, classroom_id, position) VALUES (?, ?, ?)",
                (lesson_id, cid, pos),
            )
        if spec.recurrence is not None:
            for day in sorted(set(spec.recurrence.exceptions)):
                db.execute(
                    "INSERT INTO lesson_exceptions (lesson_id, day) VALUES (?, ?)",
                    (lesson_id, day.isoformat()),
                )

    def _span_end(self, bureau_id: str, lesson_id: str, spec: LessonSpec) -> float:
        occ = expand(lesson_id, spec.start, spec.end, spec.recurrence, self.tz(bureau_id))
        return max((o.end for o in occ), default=spec.end)

    def _check_spec(self, bureau_id: str, lesson_id: str, spec: LessonSpec, current: Lesson | None = None) -> None:
        self._check_refs(bureau_id, spec, current)
        if not expand(lesson_id, spec.start, spec.end, spec.recurrence, self.tz(bureau_id)):
            raise bad_request("invalid_field", "the lesson has no occurrence (every week is an exception)")
        conflicts = self._conflicts(bureau_id, lesson_id, spec)
        if conflicts:
            raise self._conflict_error(conflicts)

    def create_lesson(self, bureau_id: str, spec: LessonSpec) -> Lesson:
        lesson_id = _new_id("les")
        now = self.clock()
        with self._tx() as db:
            self._check_spec(bureau_id, lesson_id, spec)
            db.execute(
                "INSERT INTO lessons (id, bureau_id, subject, title, lead_classroom_id,"
                " lead_teacher_id, start_ts, end_ts, span_end_ts, recurrence_until, recording,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lesson_id,
                    bureau_id,
                    spec.subject,
                    spec.title,
                    spec.lead_classroom_id,
                    spec.lead_teacher_id,
                    spec.start,
                    spec.end,
                    self._span_end(bureau_id, lesson_id, spec),
                    spec.recurrence.until.isoformat() if spec.recurrence else None,
                    int(spec.recording),
                    now,
                    now,
                ),
            )
            self._write_lesson(db, lesson_id, spec)
        lesson = self.get_lesson(bureau_id, lesson_id)
        assert lesson is not None
        return lesson

    def update_lesson(self, bureau_id: str, lesson_id: str, spec: LessonSpec) -> Lesson:
        with self._tx() as db:
            current = self.get_lesson(bureau_id, lesson_id)
            if current is None:
                raise not_found("lesson")
            if current.cancelled:
                raise ApiError(409, "lesson_cancelled", "a cancelled lesson cannot be changed")
            self._check_spec(bureau_id, lesson_id, spec, current)
            db.execute(
                "UPDATE lessons SET subject = ?, title = ?, lead_classroom_id = ?,"
                " lead_teacher_id = ?, start_ts = ?, end_ts = ?, span_end_ts = ?,"
                " recurrence_until = ?, recording = ?, updated_at = ? WHERE id = ?",
                (
                    spec.subject,
                    spec.title,
                    spec.lead_classroom_id,
                    spec.lead_teacher_id,
                    spec.start,
                    spec.end,
                    self._span_end(bureau_id, lesson_id, spec),
                    spec.recurrence.until.isoformat() if spec.recurrence else None,
                    int(spec.recording),
                    self.clock(),
                    lesson_id,
                ),
            )
            self._write_lesson(db, lesson_id, spec)
        lesson = self.get_lesson(bureau_id, lesson_id)
        assert lesson is not None
        return lesson

    def cancel_lesson(self, bureau_id: str, lesson_id: str, day: date | None = None) -> Lesson:
        """Cancel the whole lesson (series), or only its occurrence on ``day``."""
        with self._tx() as db:
            lesson = self.get_lesson(bureau_id, lesson_id)
            if lesson is None:
                raise not_found("lesson")
            if lesson.cancelled:
                raise ApiError(409, "lesson_cancelled", "the lesson is already cancelled")
            now = self.clock()
            if day is None:
                db.execute(
                    "UPDATE lessons SET cancelled_at = ?, updated_at = ? WHERE id = ?",
                    (now, now, lesson_id),
                )
            else:
                if lesson.recurrence is None:
                    raise bad_request(
                        "invalid_field",
                        "date is only for recurring lessons; cancel a one-off lesson without it",
                    )
                occ = self.find_occurrence(lesson, day)
                if occ is None:
                    raise bad_request("invalid_field", f"the lesson has no occurrence on {day.isoformat()}")
                if self._status(lesson, occ, now) in ("live", "ended"):
                    raise ApiError(
                        409,
                        "occurrence_started",
                        "an occurrence that has begun cannot be cancelled",
                    )
                db.execute(
                    "INSERT INTO lesson_exceptions (lesson_id, day) VALUES (?, ?)",
                    (lesson_id, day.isoformat()),
                )
                db.execute("UPDATE lessons SET updated_at = ? WHERE id = ?", (now, lesson_id))
        result = self.get_lesson(bureau_id, lesson_id)
        assert result is not None
        return result

    # ---------------------------------------------------------------- lifecycle
    def _state(self, occurrence_id: str) -> Any | None:
        rows = self._q("SELECT * FROM occurrences WHERE occurrence_id = ?", (occurrence_id,))
        return rows[0] if rows else None

    def _status(self, lesson: Lesson, occ: Occurrence, now: float) -> str:
        if lesson.cancelled:
            return "cancelled"
        row = self._state(occ.occurrence_id)
        if row is not None and row["status"] == "ended":
            return "ended"
        if row is not None and row["status"] == "live":
            return "ended" if now > occ.end + JOIN_AFTER_S else "live"
        # nobody came (yet): joinable until the tokens expire, then over
        return "ended" if now > occ.end + JOIN_AFTER_S else "scheduled"

    def view(self, lesson: Lesson, occ: Occurrence) -> OccurrenceView:
        row = self._state(occ.occurrence_id)
        return OccurrenceView(
            lesson=lesson,
            occurrence=occ,
            status=self._status(lesson, occ, self.clock()),
            started_at=row["started_at"] if row is not None else None,
            ended_at=row["ended_at"] if row is not None else None,
        )

    def occurrences_between(
        self,
        bureau_id: str,
        start: float,
        end: float,
        school_id: str | None = None,
        classroom_id: str | None = None,
    ) -> list[OccurrenceView]:
        """Occurrences of the bureau's lessons that overlap [start, end), by start time."""
        lessons = self._lessons(
            "SELECT * FROM lessons WHERE bureau_id = ? AND start_ts < ? AND span_end_ts > ? ORDER BY start_ts, id",
            (bureau_id, end, start),
        )
        rooms: set[str] | None = None
        if school_id is not None:
            rooms = {c.id for c in self.list_classrooms(bureau_id, school_id)}
        out: list[OccurrenceView] = []
        for lesson in lessons:
            if classroom_id is not None and classroom_id not in lesson.classroom_ids:
                continue
            if rooms is not None and not rooms.intersection(lesson.classroom_ids):
                continue
            for occ in self.occurrences(lesson):
                if occ.start < end and occ.end > start:
                    out.append(self.view(lesson, occ))
        out.sort(key=lambda v: (v.occurrence.start, v.lesson.id))
        return out

    def history(self, occurrence_id: str) -> list[JoinEvent]:
        rows = self._q(
            "SELECT occurrence_id, classroom_id, joined_at, left_at FROM join_events"
            " WHERE occurrence_id = ? ORDER BY id",
            (occurrence_id,),
        )
        return [JoinEvent(**dict(r)) for r in rows]

    @_goes_on_without_database(None)
    def admit(self, claims: TokenClaims) -> None:
        """Called by the signaling on every join, after the token's signature and validity
        window were checked. Raises ``TokenError("lesson_unavailable", ...)`` when the schedule
        says no. Lesson ids the schedule never issues (e.g. ``demo-...``) are admitted."""
        parsed = split_occurrence_id(claims.lesson_id)
        if parsed is None:
            return
        lesson_id, day = parsed
        lesson = self._lesson_any_bureau(lesson_id)
        if lesson is None:
            raise TokenError("lesson_unavailable", "this lesson does not exist")
        if lesson.cancelled:
            raise TokenError("lesson_unavailable", "this lesson was cancelled")
        occ = self.find_occurrence(lesson, day)
        if occ is None or occ.occurrence_id != claims.lesson_id:
            raise TokenError("lesson_unavailable", "this lesson was cancelled or moved on that day")
        now = self.clock()
        if self._status(lesson, occ, now) == "ended":
            raise TokenError("lesson_unavailable", "this lesson has ended")
        opens, closes = token_window(occ)
        if not opens <= now <= closes:
            raise TokenError("lesson_unavailable", "this lesson is not open now (its time was changed)")
        if claims.role == "lead" and claims.classroom_id != lesson.lead_classroom_id:
            raise TokenError(
                "lesson_unavailable",
                f"classroom {claims.classroom_id} is not the lead classroom of this lesson",
            )
        if claims.role == "remote" and claims.classroom_id not in lesson.remote_classroom_ids:
            raise TokenError(
                "lesson_unavailable",
                f"classroom {claims.classroom_id} is not a remote classroom of this lesson",
            )

    @_goes_on_without_database(False)
    def recording_enabled(self, lesson_id: str) -> bool:
        """Whether the schedule asks for the live room ``lesson_id`` (an occurrence id) to be
        recorded. Rooms the schedule does not know (e.g. the demo lesson) answer False."""
        parsed = split_occurrence_id(lesson_id)
        if parsed is None:
            return False
        lesson = self._lesson_any_bureau(parsed[0])
        return bool(lesson is not None and lesson.recording)

    @_goes_on_without_database(None)
    def on_joined(self, lesson_id: str, classroom_id: str) -> None:
        """A classroom joined the live room ``lesson_id`` (an occurrence id): the lesson is
        live, and the join is kept in its history."""
        parsed = split_occurrence_id(lesson_id)
        if parsed is None:
            return
        lesson = self._lesson_any_bureau(parsed[0])
        if lesson is None or self.find_occurrence(lesson, parsed[1]) is None:
            return
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "UPDATE join_events SET left_at = ? WHERE occurrence_id = ? AND classroom_id = ? AND left_at IS NULL",
                (now, lesson_id, classroom_id),
            )
            db.execute(
                "INSERT INTO join_events (occurrence_id, lesson_id, classroom_id, joined_at) VALUES (?, ?, ?, ?)",
                (lesson_id, parsed[0], classroom_id, now),
            )
            db.execute(
                "INSERT INTO occurrences (occurrence_id, lesson_id, status, started_at)"
                " VALUES (?, ?, 'live', ?) ON CONFLICT(occurrence_id) DO UPDATE SET"
                " status = 'live', ended_at = NULL",
                (lesson_id, parsed[0], now),
            )

    @_goes_on_without_database(None)
    def on_left(self, lesson_id: str, classroom_id: str) -> None:
        """A classroom left. When the last one leaves after the scheduled end, the lesson
        has ended (leaving earlier keeps it live: classrooms reconnect)."""
        parsed = split_occurrence_id(lesson_id)
        if parsed is None:
            return
        lesson = self._lesson_any_bureau(parsed[0])
        if lesson is None:
            return
        occ = self.find_occurrence(lesson, parsed[1])
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "UPDATE join_events SET left_at = ? WHERE occurrence_id = ? AND classroom_id = ? AND left_at IS NULL",
                (now, lesson_id, classroom_id),
            )
            still = db.execute(
                "SELECT COUNT(*) FROM join_events WHERE occurrence_id = ? AND left_at IS NULL",
                (lesson_id,),
            ).fetchone()[0]
            if still == 0 and occ is not None and now >= occ.end:
                db.execute(
                    "UPDATE occurrences SET status = 'ended', ended_at = ? WHERE occurrence_id = ?",
                    (now, lesson_id),
                )

    @_goes_on_without_database(None)
    def expected_classrooms(self, lesson_id: str) -> list[dict[str, str]] | None:
        """The remote classrooms the live room ``lesson_id`` (an occurrence id) expects, in the
        lesson's order, as ``{classroom_id, name}``; ``None`` for rooms the schedule never issued."""
        parsed = split_occurrence_id(lesson_id)
        if parsed is None:
            return None
        lesson = self._lesson_any_bureau(parsed[0])
        if lesson is None:
            return None
        out = []
        for cid in lesson.remote_classroom_ids:
            room = self.get_classroom(lesson.bureau_id, cid)
            out.append({"classroom_id": cid, "name": room.name if room is not None else cid})
        return out

    @_goes_on_without_database(None)
    def end_occurrence(self, lesson_id: str) -> None:
        """The lead ended the live room ``lesson_id`` (an occurrence id): the occurrence is
        ``ended`` now, so its join links are refused (``lesson_unavailable``)."""
        parsed = split_occurrence_id(lesson_id)
        if parsed is None:
            return
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "INSERT INTO occurrences (occurrence_id, lesson_id, status, started_at, ended_at)"
                " VALUES (?, ?, 'ended', ?, ?) ON CONFLICT(occurrence_id) DO UPDATE SET"
                " status = 'ended', ended_at = excluded.ended_at",
                (lesson_id, parsed[0], now, now),
            )

    def connected_from_history(self, occurrence_id: str) -> list[str]:
        """Classrooms with an open join record (what this process was told by the signaling)."""
        rows = self._q(
            "SELECT DISTINCT classroom_id FROM join_events WHERE occurrence_id = ?"
            " AND left_at IS NULL ORDER BY classroom_id",
            (occurrence_id,),
        )
        return [r[0] for r in rows]
