"""API-key checks for the schedule API without stalling the event loop.

The password hash (scrypt, ~50 ms of CPU) runs on a small thread pool (``hashlib.scrypt``
releases the GIL), never on the event loop. In front of it: a key already verified is served
from the store's cache (and its revocation state is read from the database every time); a
malformed key or an unknown/revoked administrator id costs no hash; per-id and per-address
attempt limits and a bounded queue answer ``429 rate_limited`` with ``Retry-After`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from signaling.limits import Limits

from . import auth
from .attempts import AttemptLimiter, Refusal
from .errors import ApiError
from .models import Admin, Device
from .store import ScheduleStore

log = logging.getLogger(__name__)


def _limited(refusal: Refusal) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        refusal.message,
        headers={"Retry-After": str(refusal.retry_after_s)},
        retry_after=refusal.retry_after_s,
    )


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


class KeyGate:
    def __init__(self, store: ScheduleStore, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()
        lim = self.limits
        self.limiter = AttemptLimiter(
            lim.key_failures_per_id,
            lim.key_failures_per_address,
            lim.key_failure_window_s,
            lim.key_pending_per_id,
            lim.key_pending_per_address,
        )
        self._pool: ThreadPoolExecutor | None = None
        self.in_flight = 0  # hashes queued or running
        self.hashes = 0
        self.failures = 0

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(self.limits.key_hash_workers, 1), thread_name_prefix="key-hash")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def authenticate(self, key: str, address: str) -> Admin:
        """The administrator of ``key`` or an :class:`ApiError` (401, or 429 with Retry-After)."""
        admin_id = auth.admin_id_of(key)
        if admin_id is None:
            raise unauthorized("the API key is not valid (expected cka_<admin id>.<secret>)")
        cached = self.store.cached_admin(key)
        if cached is not None:
            return cached
        refusal = self.limiter.check(admin_id, address)
        if refusal is not None:
            log.info("API key check refused: %s", refusal.message)
            raise _limited(refusal)
        record = self.store.key_record(admin_id)
        if record is None:
            self.failures += 1
            self.limiter.failed(address)
            raise unauthorized("the API key is not valid")
        capacity = max(self.limits.key_hash_workers, 1) + max(self.limits.key_hash_queue, 0)
        if self.in_flight >= capacity:
            self.limiter.refused += 1
            raise _limited(Refusal("too many API key checks in progress; retry in 1 s", 1))
        admin, salt, digest = record
        await self._check(admin_id, address, key, salt, digest)
        self.store.remember_key(key, admin)
        return admin

    async def _check(
        self, ident: str, address: str, key: str, salt: bytes, digest: bytes, what: str = "API key"
    ) -> None:
        """Hash ``key`` on the pool and compare; 401 when it does not match."""
        self.limiter.begin(ident, address)
        self.in_flight += 1
        ok = False
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self.pool, auth.check_key, key, salt, digest)
        finally:
            self.in_flight -= 1
            self.hashes += 1
            self.limiter.end(ident, address, ok)
        if not ok:
            self.failures += 1
            raise unauthorized(f"the {what} is not valid")

    async def new_credential(self, make: Callable[[], auth.NewCredential]) -> auth.NewCredential:
        """A new credential made by ``make`` (it hashes: ``auth.new_admin_credential`` or
        ``auth.new_device_credential``) on the pool, never on the event loop (a hash on the loop
        stalled every lesson for 50–200 ms per ``POST /api/admins``; found by the REST fuzzer);
        shares the pool's bound: 429 ``rate_limited`` when it is full."""
        capacity = max(self.limits.key_hash_workers, 1) + max(self.limits.key_hash_queue, 0)
        if self.in_flight >= capacity:
            self.limiter.refused += 1
            raise _limited(Refusal("too many credential hashes in progress; retry in 1 s", 1))
        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, make)
        finally:
            self.in_flight -= 1
            self.hashes += 1

    async def authenticate_device(self, key: str, address: str) -> Device:
        """The device of a device credential ``ckd_<device id>.<secret>`` (same limits, same
        hashing off the event loop, same cache with a revocation check as administrator keys)."""
        device_id = auth.device_id_of(key)
        if device_id is None:
            raise unauthorized("the device credential is not valid (expected ckd_<device id>.<secret>)")
        cached = self.store.cached_device(key)
        if cached is not None:
            return cached
        refusal = self.limiter.check(device_id, address)
        if refusal is not None:
            raise _limited(refusal)
        record = self.store.device_key_record(device_id)
        if record is None:
            self.failures += 1
            self.limiter.failed(address)
            raise unauthorized("the device credential is not valid")
        capacity = max(self.limits.key_hash_workers, 1) + max(self.limits.key_hash_queue, 0)
        if self.in_flight >= capacity:
            self.limiter.refused += 1
            raise _limited(Refusal("too many credential checks in progress; retry in 1 s", 1))
        device, salt, digest = record
        await self._check(device_id, address, key, salt, digest, "device credential")
        self.store.remember_device_key(key, device)
        return device
