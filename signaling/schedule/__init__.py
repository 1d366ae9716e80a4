"""Education-bureau scheduling (排课): lessons, lifecycle, join tokens and bureau admins.

Wiring (in the server)::

    store = ScheduleStore.open(data_dir)            # data_dir/schedule.sqlite3
    key = store.ensure_bootstrap_admin()            # print once if not None
    setup_schedule(app, store, signer, live, public_url)
    # on every join, after signer.verify(token): store.admit(claims)
    # then store.on_joined(claims.lesson_id, claims.classroom_id) / store.on_left(...)
"""

from .api import LiveStatus, setup_schedule
from .errors import ApiError
from .store import ScheduleStore
from .timing import occurrence_id, split_occurrence_id, token_window

__all__ = [
    "ApiError",
    "LiveStatus",
    "ScheduleStore",
    "occurrence_id",
    "setup_schedule",
    "split_occurrence_id",
    "token_window",
]
