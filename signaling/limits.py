"""Limits on what an unauthenticated peer may cost the server (docs/security.md).

One dataclass, the ``limits`` section of the config (``classroom/config.py``): every field can be
set in the YAML file or as ``CLASSROOM_LIMITS_<FIELD>`` (e.g. ``CLASSROOM_LIMITS_JOIN_TIMEOUT_S=5``).
A value of 0 turns a cap off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _hash_workers() -> int:
    return max(1, min(2, (os.cpu_count() or 2) - 1))


@dataclass
class Limits:
    # A classroom WebSocket must send a valid ``join`` within this many seconds of connecting;
    # otherwise it gets ``error join_timeout`` and is closed (code 1008).
    join_timeout_s: float = 10.0
    # Connections not yet authenticated: TCP connections that have not sent a complete request
    # head, plus classroom WebSockets that have not joined. Over the cap a new one is refused
    # (HTTP 503 / 429 with Retry-After and a JSON error).
    max_unauthenticated: int = 1024
    max_unauthenticated_per_address: int = 64
    # A connection must send a complete request head within this many seconds of connecting (or
    # of its previous response); it is the idle keep-alive timeout too.
    http_header_timeout_s: float = 15.0
    # A JSON request body must arrive within this many seconds.
    http_body_timeout_s: float = 30.0
    # The WebSocket transport's frame limit. Messages above ``server.max_message_bytes`` (the
    # protocol's limit) and up to this size get ``error message_too_large`` and the connection
    # stays; above it the server sends that error, then closes with 1009.
    max_frame_bytes: int = 1024 * 1024
    # API keys: the password hash (scrypt) runs on this many worker threads, never on the event
    # loop; at most ``key_hash_queue`` hashes wait, further ones are answered 429 at once. By
    # default one fewer than the machine's cores (1 to 2): on a 2-core machine two hashing threads
    # took both cores from the event loop for 0.2 s under a wrong-key flood.
    key_hash_workers: int = field(default_factory=_hash_workers)
    key_hash_queue: int = 16
    # Hashes in progress at once for one administrator id / one client address.
    key_pending_per_id: int = 2
    key_pending_per_address: int = 4
    # Failed key checks allowed per administrator id / per client address within the window;
    # beyond, 429 ``rate_limited`` with Retry-After until the oldest failure leaves the window.
    # A key already verified (cached) is never limited.
    key_failures_per_id: int = 10
    key_failures_per_address: int = 30
    key_failure_window_s: float = 300.0
    # A joined classroom's ``publish`` offers, per connection: each builds a new peer connection
    # (~5–10 ms of the event loop, and garbage for the collector to walk later). A token bucket of
    # ``publish_burst`` offers refilled at ``publish_per_s``; beyond it ``error rate_limited``
    # (the message says when to retry) and nothing is negotiated. 0 turns it off.
    publish_burst: int = 8
    publish_per_s: float = 1.0
