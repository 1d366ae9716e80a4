"""Administrator API keys: format, hashing at rest, verification."""

from __future__ import annotations

from signaling.schedule import auth


def test_key_round_trip() -> None:
    admin_id = auth.new_admin_id()
    key = auth.make_key(admin_id)
    assert key.startswith("cka_") and auth.admin_id_of(key) == admin_id
    salt, digest = auth.hash_key(key)
    assert len(salt) == 16 and len(digest) == 32
    assert key.encode() not in digest
    assert auth.check_key(key, salt, digest)
    assert not auth.check_key(key + "x", salt, digest)
    assert auth.hash_key(key)[1] != digest  # a fresh salt each time


def test_malformed_keys() -> None:
    for bad in ("", "nope", "cka_", "cka_.x", "cka_a.b.c", "x" * 300):
        assert auth.admin_id_of(bad) is None
