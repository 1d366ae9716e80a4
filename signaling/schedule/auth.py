"""Bureau administrator API keys.

A key reads ``cka_<admin id>.<secret>``; only a salted scrypt hash of it is stored. Verified
keys are remembered in memory (by their SHA-256) so that a page polling every few seconds does
not pay for scrypt on each request; every use of a remembered key still asks the database whether
it was revoked (by this process or by ``classroom admin revoke-admin`` in another).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "cka_"
# cka_<admin id>.<secret>: printable ASCII only (a header with other bytes is refused before
# any lookup or hash).
_KEY_RE = re.compile(r"cka_([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,128})")
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


DEVICE_KEY_PREFIX = "ckd_"
_DEVICE_KEY_RE = re.compile(r"ckd_([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,128})")


def new_device_id() -> str:
    return "dev_" + secrets.token_hex(6)


def make_device_key(device_id: str) -> str:
    return f"{DEVICE_KEY_PREFIX}{device_id}.{secrets.token_urlsafe(32)}"


def device_id_of(key: str) -> str | None:
    """The device id a device credential names, or ``None`` if it is not one."""
    match = _DEVICE_KEY_RE.fullmatch(key)
    return match.group(1) if match else None


def new_admin_id() -> str:
    return "adm_" + secrets.token_hex(6)


def make_key(admin_id: str) -> str:
    return f"{KEY_PREFIX}{admin_id}.{secrets.token_urlsafe(32)}"


def well_formed(key: str) -> bool:
    return _KEY_RE.fullmatch(key) is not None


def admin_id_of(key: str) -> str | None:
    """The administrator id a key names (its visible prefix), or ``None`` if it is not a key."""
    match = _KEY_RE.fullmatch(key)
    return match.group(1) if match else None


def hash_key(key: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(key.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return salt, digest


@dataclass(frozen=True)
class NewCredential:
    """A freshly made credential (administrator key or device credential) and its hash: made
    on the key-hash pool by the API (``KeyGate.new_credential``), stored by the store."""

    id: str
    key: str
    salt: bytes
    digest: bytes


def new_admin_credential() -> NewCredential:
    admin_id = new_admin_id()
    key = make_key(admin_id)
    salt, digest = hash_key(key)
    return NewCredential(admin_id, key, salt, digest)


def new_device_credential() -> NewCredential:
    device_id = new_device_id()
    key = make_device_key(device_id)
    salt, digest = hash_key(key)
    return NewCredential(device_id, key, salt, digest)


def check_key(key: str, salt: bytes, digest: bytes) -> bool:
    return hmac.compare_digest(hash_key(key, salt)[1], digest)


def cache_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
