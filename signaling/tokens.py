"""Signed join tokens: what a classroom may do in which lesson, and when.

A token is ``base64url(json claims) + "." + base64url(HMAC-SHA256(secret, payload))``.
No external service is involved; the secret lives in the server's data directory
(or the ``CLASSROOM_TOKEN_SECRET`` environment variable, or a file named by
``CLASSROOM_TOKEN_SECRET_FILE``) and never in the repository. Every node of a cluster uses the
same secret, so any node verifies a token any node (or the schedule API) issued: nodes on one
machine share the data dir's file, nodes on several machines get it from the environment or a
secret file (docs/operations.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROLES = ("lead", "remote", "observer", "recorder")
MAX_TOKEN_LENGTH = 4096


class TokenError(ValueError):
    """A token that must not admit anybody; ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TokenClaims:
    lesson_id: str
    classroom_id: str
    role: str
    name: str
    not_before: float  # unix seconds
    expires: float  # unix seconds
    # Optional: the display name of the lesson (so a page can show it before the API is asked).
    lesson_title: str = ""
    # Recorder tokens only: the per-launch nonce the server remembers (signaling/recorder_access.py).
    nonce: str = ""

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        if not self.nonce:
            del out["nonce"]
        return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


class TokenSigner:
    """Issues and verifies join tokens with one HMAC secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("token secret must be at least 16 bytes")
        self._secret = secret

    @classmethod
    def from_data_dir(
        cls, data_dir: Path, env_secret: str | None = None, secret_file: str | Path | None = None
    ) -> TokenSigner:
        """Use ``env_secret`` if given, else ``secret_file`` (its first line), else the secret
        file in ``data_dir`` (created once)."""
        if env_secret:
            return cls(env_secret.encode("utf-8"))
        if secret_file:
            lines = Path(secret_file).read_bytes().strip().splitlines()
            return cls(lines[0].strip() if lines else b"")
        path = data_dir / "token_secret"
        if path.exists():
            return cls(path.read_bytes().strip())
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32).encode("ascii")
        # Written whole to a private temporary file (0600 from the start: never readable by
        # others, not even briefly), then linked into place: of several node processes starting
        # on a fresh data dir at once, one secret wins and every process reads that one.
        fd, tmp = tempfile.mkstemp(prefix=".token_secret.", dir=data_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secret)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return cls(path.read_bytes().strip())
        finally:
            os.unlink(tmp)
        return cls(secret)

    def issue(
        self,
        lesson_id: str,
        classroom_id: str,
        role: str,
        name: str = "",
        not_before: float | None = None,
        expires: float | None = None,
        lesson_title: str = "",
        nonce: str = "",
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        now = time.time()
        claims = TokenClaims(
            lesson_id=lesson_id,
            classroom_id=classroom_id,
            role=role,
            name=name or classroom_id,
            not_before=now - 60 if not_before is None else not_before,
            expires=now + 12 * 3600 if expires is None else expires,
            lesson_title=lesson_title,
            nonce=nonce,
        )
        payload = _b64(json.dumps(claims.to_json(), separators=(",", ":")).encode("utf-8"))
        return payload + "." + self._sign(payload)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def verify(self, token: object, now: float | None = None, grace_s: float = 0.0) -> TokenClaims:
        """Return the claims of a valid token or raise :class:`TokenError`. ``grace_s`` accepts
        a token that expired at most that long ago (e.g. a classroom fetching its lesson's
        recording after the lesson)."""
        if not isinstance(token, str) or not token:
            raise TokenError("token_missing", "a join token is required")
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1 or not token.isascii():
            raise TokenError("token_malformed", "the join token is malformed")
        payload, signature = token.split(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise TokenError("token_invalid", "the join token's signature is not valid")
        try:
            raw = json.loads(_unb64(payload))
            claims = TokenClaims(
                lesson_id=str(raw["lesson_id"]),
                classroom_id=str(raw["classroom_id"]),
                role=str(raw["role"]),
                name=str(raw.get("name", "")),
                not_before=float(raw["not_before"]),
                expires=float(raw["expires"]),
                lesson_title=str(raw.get("lesson_title", "")),
                nonce=str(raw.get("nonce", "")),
            )
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise TokenError("token_malformed", "the join token's claims are malformed") from exc
        if not (math.isfinite(claims.not_before) and math.isfinite(claims.expires)):
            raise TokenError("token_malformed", "the join token's validity window is malformed")
        if claims.role not in ROLES:
            raise TokenError("token_malformed", f"unknown role {claims.role!r}")
        now = time.time() if now is None else now
        if now < claims.not_before:
            raise TokenError("token_not_yet_valid", "the join token is not valid yet")
        if now > claims.expires + grace_s:
            raise TokenError("token_expired", "the join token has expired")
        return claims
