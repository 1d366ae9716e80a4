"""Bureau administrators from the command line.

``python -m signaling.schedule.cli create-admin --data-dir DIR --bureau NAME [--name NAME]``
creates the bureau if needed and prints the new administrator's API key (shown only once).
``list-bureaus`` lists bureaus with their ids; ``revoke-admin ADMIN_ID`` disables a key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classroom-admin", description=__doc__)
    parser.add_argument("--data-dir", default="./data", help="the server's data directory")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-admin", help="create a bureau administrator (and bureau)")
    create.add_argument("--bureau", required=True, help="bureau name")
    create.add_argument("--name", default="admin", help="administrator name")
    create.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="IANA zone of a new bureau")
    sub.add_parser("list-bureaus", help="list bureaus")
    revoke = sub.add_parser("revoke-admin", help="disable an administrator's key")
    revoke.add_argument("admin_id")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    store = ScheduleStore.open(Path(args.data_dir))
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
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
