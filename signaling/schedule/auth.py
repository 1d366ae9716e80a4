"""Bureau administrator API keys.

A key reads ``cka_<admin id>.<secret>``; only a salted scrypt hash of it is stored. Verified
keys are remembered in memory (by their SHA-256) so that a page polling every few seconds does
not pay for scrypt on each request; revoking a key clears that memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "cka_"
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def new_admin_id() -> str:
    return "adm_" + secrets.token_hex(6)


def make_key(admin_id: str) -> str:
    return f"{KEY_PREFIX}{admin_id}.{secrets.token_urlsafe(32)}"


def admin_id_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX) or key.count(".") != 1 or len(key) > 200:
        return None
    admin_id = key[len(KEY_PREFIX) :].split(".", 1)[0]
    return admin_id or None


def hash_key(key: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(key.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return salt, digest


def check_key(key: str, salt: bytes, digest: bytes) -> bool:
    return hmac.compare_digest(hash_key(key, salt)[1], digest)


def cache_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
