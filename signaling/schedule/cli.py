"""Bureau administrators from the command line.

``python -m signaling.schedule.cli create-admin --data-dir DIR --bureau NAME [--name NAME]``
creates the bureau if needed and prints the new administrator's API key (shown only once).
``list-bureaus`` lists bureaus with their ids; ``revoke-admin ADMIN_ID`` disables a key.
``import-classrooms --bureau NAME FILE [--dry-run]`` imports a district's schools and classrooms
from a CSV file (the format of ``POST /api/import/classrooms``, docs/api.md): every bad row is
printed with its row number, field and reason (zh and en) and skipped; exit status 1 when a row
was bad, 2 when the file is unusable.

The schedule is the data dir's SQLite file, or the PostgreSQL database of a cluster given by
``CLASSROOM_DATABASE_URL`` (its password from ``CLASSROOM_DATABASE_PASSWORD_FILE``,
``CLASSROOM_DATABASE_PASSWORD`` or libpq's ``PGPASSFILE``), the same settings ``classroom serve``
reads (docs/operations.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .csv_import import CsvFileError, parse_classrooms_csv
from .store import DEFAULT_TIMEZONE, ScheduleStore
from .timing import valid_zone


def create_admin(
    store: ScheduleStore,
    bureau_name: str,
    admin_name: str = "admin",
    timezone: str = DEFAULT_TIMEZONE,
) -> str:
    """Create an administrator of the bureau called ``bureau_name`` (created when missing)
    and return the API key in clear (only its hash is stored)."""
    bureau = store.bureau_by_name(bureau_name) or store.create_bureau(bureau_name, timezone)
    _, key = store.create_admin(bureau.id, admin_name)
    return key


def open_store(data_dir: Path, env: Mapping[str, str]) -> ScheduleStore:
    """The server's schedule: ``CLASSROOM_DATABASE_URL`` when set, else ``data_dir``'s SQLite file.
    Opened as a cluster node would (the running servers' open join records are left alone)."""
    url = env.get("CLASSROOM_DATABASE_URL", "")
    if not url:
        return ScheduleStore.open(data_dir, close_stale_joins=False)
    password = env.get("CLASSROOM_DATABASE_PASSWORD") or None
    password_file = env.get("CLASSROOM_DATABASE_PASSWORD_FILE")
    if password_file:
        lines = Path(password_file).read_text(encoding="utf-8").strip().splitlines()
        password = lines[0].strip() if lines else None
    return ScheduleStore.open(url, password=password, close_stale_joins=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classroom-admin", description=__doc__)
    parser.add_argument("--data-dir", default="./data", help="the server's data directory")
    # --data-dir also after the command (`classroom admin create-admin --data-dir D ...`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="the server's data directory")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-admin", parents=[common], help="create a bureau administrator (and bureau)")
    create.add_argument("--bureau", required=True, help="bureau name")
    create.add_argument("--name", default="admin", help="administrator name")
    create.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="IANA zone of a new bureau")
    sub.add_parser("list-bureaus", parents=[common], help="list bureaus")
    revoke = sub.add_parser("revoke-admin", parents=[common], help="disable an administrator's key")
    revoke.add_argument("admin_id")
    imp = sub.add_parser("import-classrooms", parents=[common], help="import schools and classrooms from a CSV file")
    imp.add_argument("--bureau", required=True, help="bureau name")
    imp.add_argument("--dry-run", action="store_true", help="only check the file: create nothing")
    imp.add_argument("file", type=Path, help="CSV (UTF-8, header school,classroom,role[,kind])")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    store = open_store(Path(args.data_dir), os.environ)
    try:
        if args.command == "create-admin":
            if not valid_zone(args.timezone):
                print(f"unknown time zone {args.timezone!r}", file=sys.stderr)
                return 2
            print(create_admin(store, args.bureau, args.name, args.timezone))
        elif args.command == "list-bureaus":
            for bureau in store.list_bureaus():
                print(f"{bureau.id}\t{bureau.name}\t{bureau.timezone}")
        elif args.command == "revoke-admin":
            if not store.revoke_admin(args.admin_id):
                print(f"no active administrator {args.admin_id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.admin_id}: its key is refused from now on, also by a running server")
        elif args.command == "import-classrooms":
            return import_classrooms(store, args.bureau, args.file, args.dry_run)
    finally:
        store.close()
    return 0


def import_classrooms(store: ScheduleStore, bureau_name: str, path: Path, dry_run: bool) -> int:
    bureau = store.bureau_by_name(bureau_name)
    if bureau is None:
        print(f"no bureau named {bureau_name!r} (list-bureaus lists them)", file=sys.stderr)
        return 2
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    rooms, schools = store.classroom_names(bureau.id)
    try:
        plan = parse_classrooms_csv(data, rooms, schools)
    except CsvFileError as exc:
        print(f"{path}: {exc.message_zh} / {exc.message}", file=sys.stderr)
        return 2
    for e in plan.errors:
        print(f"{path}:{e.row}: {e.field}: {e.message_zh} / {e.message}", file=sys.stderr)
    if dry_run:
        print(f"dry run: {len(plan.rows)} rows OK, {len(plan.bad_rows)} bad rows; new schools: {len(plan.new_schools)}")
    elif plan.rows:
        new_schools, new_rooms = store.import_classrooms(
            bureau.id, [(r.school, r.classroom, r.lead_capable, r.kind) for r in plan.rows]
        )
        print(f"imported {len(new_rooms)} classrooms, {len(new_schools)} new schools; {len(plan.bad_rows)} bad rows")
    else:
        print(f"nothing imported; {len(plan.bad_rows)} bad rows")
    return 1 if plan.errors else 0


if __name__ == "__main__":
    sys.exit(main())
