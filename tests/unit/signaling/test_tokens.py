"""signaling/tokens.py: signed join tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from signaling.tokens import MAX_TOKEN_LENGTH, ROLES, TokenClaims, TokenError, TokenSigner

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed(payload: str, secret: bytes = SECRET) -> str:
    """A token whose signature is valid for ``payload`` (whatever the payload holds)."""
    mac = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return payload + "." + b64(mac)


def claims_json(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "lesson_id": "L1",
        "classroom_id": "c1",
        "role": "remote",
        "name": "Room 1",
        "not_before": NOW - 60,
        "expires": NOW + 3600,
        "lesson_title": "Physics",
    }
    claims.update(overrides)
    return claims


def code_of(signer: TokenSigner, token: object, now: float = NOW) -> str:
    with pytest.raises(TokenError) as info:
        signer.verify(token, now=now)
    return info.value.code


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


# --- round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_issue_verify_round_trip(signer: TokenSigner, role: str) -> None:
    token = signer.issue("L1", "c1", role, name="Room 1", not_before=NOW - 1, expires=NOW + 1,
                         lesson_title="Physics")
    claims = signer.verify(token, now=NOW)
    assert claims == TokenClaims("L1", "c1", role, "Room 1", NOW - 1, NOW + 1, "Physics")


def test_token_is_url_safe(signer: TokenSigner) -> None:
    token = signer.issue("L/1?&", "c+1", "lead", name="Ünïcødé ✓", lesson_title="数学")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    claims = signer.verify(token)
    assert claims.name == "Ünïcødé ✓"
    assert claims.lesson_title == "数学"
    assert claims.lesson_id == "L/1?&"


def test_default_window_and_name(signer: TokenSigner) -> None:
    before = time.time()
    claims = signer.verify(signer.issue("L1", "c7", "remote"))
    assert claims.name == "c7"
    assert claims.lesson_title == ""
    assert before - 61 <= claims.not_before <= time.time() - 59
    assert claims.expires >= before + 12 * 3600 - 1


def test_issue_rejects_unknown_role(signer: TokenSigner) -> None:
    with pytest.raises(ValueError):
        signer.issue("L1", "c1", "admin")


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenSigner(b"short")


def test_claims_to_json() -> None:
    c = TokenClaims("L", "c", "lead", "n", 1.0, 2.0)
    assert c.to_json() == {
        "lesson_id": "L", "classroom_id": "c", "role": "lead", "name": "n",
        "not_before": 1.0, "expires": 2.0, "lesson_title": "",
    }  # fmt: skip


def test_missing_optional_claims_default(signer: TokenSigner) -> None:
    raw = claims_json()
    del raw["name"]
    del raw["lesson_title"]
    claims = signer.verify(signed(b64(json.dumps(raw).encode())), now=NOW)
    assert (claims.name, claims.lesson_title) == ("", "")


# --- time window ----------------------------------------------------------------------


def test_expired(signer: TokenSigner) -> None:
    token = signer.issue("L1", "c1", "remote", not_before=NOW - 100, expires=NOW - 1)
    assert code_of(signer, token) == "token_expired"
    assert signer.verify(token, now=NOW - 1).role == "remote"  # boundary still valid


def test_not_yet_valid(signer: TokenSigner) -> None:
    token = signer.issue("L1", "c1", "remote", not_before=NOW + 10, expires=NOW + 100)
    assert code_of(signer, token) == "token_not_yet_valid"
    assert signer.verify(token, now=NOW + 10).role == "remote"


def test_expired_with_real_clock(signer: TokenSigner) -> None:
    token = signer.issue("L1", "c1", "remote", not_before=0, expires=time.time() - 5)
    with pytest.raises(TokenError) as info:
        signer.verify(token)
    assert info.value.code == "token_expired"


# --- signature ------------------------------------------------------------------------


def test_forged_signature(signer: TokenSigner) -> None:
    token = signer.issue("L1", "c1", "remote", not_before=NOW - 1, expires=NOW + 1)
    payload, sig = token.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert code_of(signer, payload + "." + flipped) == "token_invalid"
    assert code_of(signer, payload + ".") == "token_invalid"
    assert code_of(signer, payload + "." + b64(b"\x00" * 32)) == "token_invalid"


def test_tampered_payload(signer: TokenSigner) -> None:
    token = signer.issue("L1", "c1", "remote", not_before=NOW - 1, expires=NOW + 1)
    payload, sig = token.split(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["role"] = "lead"
    forged = b64(json.dumps(raw, separators=(",", ":")).encode()) + "." + sig
    assert code_of(signer, forged) == "token_invalid"


def test_wrong_secret(signer: TokenSigner) -> None:
    other = TokenSigner(b"another secret of sixteen+ bytes")
    token = other.issue("L1", "c1", "lead", not_before=NOW - 1, expires=NOW + 1)
    assert code_of(signer, token) == "token_invalid"
    assert other.verify(token, now=NOW).role == "lead"


# --- malformed ------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", 5, b"abc.def", ["a.b"], {"token": "a.b"}])
def test_missing(signer: TokenSigner, token: object) -> None:
    assert code_of(signer, token) == "token_missing"


@pytest.mark.parametrize("token", ["nodot", "a.b.c", "...", "a..b"])
def test_dot_count(signer: TokenSigner, token: str) -> None:
    assert code_of(signer, token) == "token_malformed"


def test_oversized(signer: TokenSigner) -> None:
    raw = claims_json(name="x" * MAX_TOKEN_LENGTH)
    token = signed(b64(json.dumps(raw).encode()))
    assert len(token) > MAX_TOKEN_LENGTH
    assert code_of(signer, token) == "token_malformed"


@pytest.mark.parametrize(
    "payload",
    [
        "a",  # impossible base64 length
        "!!!!",  # not base64 at all
        b64(b"\xff\xfe\x00"),  # not UTF-8 / not JSON
        b64(b"not json"),
        b64(b"[1, 2]"),
        b64(b'"a string"'),
        b64(b"null"),
        b64(b"42"),
    ],
)
def test_malformed_payload_with_valid_signature(signer: TokenSigner, payload: str) -> None:
    assert code_of(signer, signed(payload)) == "token_malformed"


@pytest.mark.parametrize("claim", ["lesson_id", "classroom_id", "role", "not_before", "expires"])
def test_missing_claim(signer: TokenSigner, claim: str) -> None:
    raw = claims_json()
    del raw[claim]
    assert code_of(signer, signed(b64(json.dumps(raw).encode()))) == "token_malformed"


@pytest.mark.parametrize(
    "overrides", [{"not_before": "soon"}, {"expires": None}, {"expires": [1]}, {"not_before": {}}]
)
def test_bad_claim_types(signer: TokenSigner, overrides: dict[str, Any]) -> None:
    raw = claims_json(**overrides)
    assert code_of(signer, signed(b64(json.dumps(raw).encode()))) == "token_malformed"


@pytest.mark.parametrize("role", ["admin", "", "LEAD", "teacher"])
def test_unknown_role(signer: TokenSigner, role: str) -> None:
    raw = claims_json(role=role)
    assert code_of(signer, signed(b64(json.dumps(raw).encode()))) == "token_malformed"


def test_token_error_is_value_error() -> None:
    err = TokenError("token_expired", "gone")
    assert isinstance(err, ValueError)
    assert err.code == "token_expired"
    assert str(err) == "gone"


# --- secret storage -------------------------------------------------------------------


def test_from_data_dir_creates_a_private_secret_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    first = TokenSigner.from_data_dir(data_dir)
    path = data_dir / "token_secret"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_bytes()
    assert len(secret.strip()) >= 32
    token = first.issue("L1", "c1", "remote", not_before=NOW - 1, expires=NOW + 1)
    second = TokenSigner.from_data_dir(data_dir)
    assert path.read_bytes() == secret  # reused, not regenerated
    assert second.verify(token, now=NOW).classroom_id == "c1"


def test_from_data_dir_uses_an_existing_secret_file(tmp_path: Path) -> None:
    (tmp_path / "token_secret").write_bytes(SECRET + b"\n")
    signer = TokenSigner.from_data_dir(tmp_path)
    token = TokenSigner(SECRET).issue("L1", "c1", "lead", not_before=NOW - 1, expires=NOW + 1)
    assert signer.verify(token, now=NOW).role == "lead"


def test_env_secret_wins(tmp_path: Path) -> None:
    TokenSigner.from_data_dir(tmp_path)  # a file secret exists
    env = "an environment secret, long enough"
    signer = TokenSigner.from_data_dir(tmp_path, env_secret=env)
    token = TokenSigner(env.encode()).issue("L1", "c1", "lead", not_before=NOW - 1,
                                            expires=NOW + 1)
    assert signer.verify(token, now=NOW).role == "lead"
    file_signed = TokenSigner.from_data_dir(tmp_path).issue("L1", "c1", "lead",
                                                            not_before=NOW - 1, expires=NOW + 1)
    assert code_of(signer, file_signed) == "token_invalid"


def test_env_secret_does_not_create_a_file(tmp_path: Path) -> None:
    TokenSigner.from_data_dir(tmp_path / "d", env_secret="an environment secret, long enough")
    assert not (tmp_path / "d" / "token_secret").exists()


def test_non_ascii_and_overflowing_tokens_are_malformed(tmp_path: Path) -> None:
    import base64
    import hashlib
    import hmac
    import json

    import pytest

    signer = TokenSigner(b"k" * 32)
    for bad in ("é.abc", "abc.é"):
        with pytest.raises(TokenError) as err:
            signer.verify(bad)
        assert err.value.code == "token_malformed"
    claims = {"lesson_id": "l", "classroom_id": "c", "role": "remote", "not_before": 0,
              "expires": 10**400}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(hmac.new(b"k" * 32, payload.encode(), hashlib.sha256).digest())
    with pytest.raises(TokenError) as err:
        signer.verify(payload + "." + sig.rstrip(b"=").decode())
    assert err.value.code == "token_malformed"


def test_a_secret_file_gives_every_node_the_same_secret(tmp_path: Path) -> None:
    """Nodes on several machines: each its own data dir, one secret file (CLASSROOM_TOKEN_SECRET_FILE)."""
    shared = tmp_path / "token_secret_file"
    shared.write_bytes(SECRET + b"\n")
    node_a = TokenSigner.from_data_dir(tmp_path / "a", secret_file=shared)
    node_b = TokenSigner.from_data_dir(tmp_path / "b", secret_file=shared)
    token = node_a.issue("L1", "c1", "remote", not_before=NOW - 1, expires=NOW + 1)
    assert node_b.verify(token, now=NOW).classroom_id == "c1"
    assert not (tmp_path / "b" / "token_secret").exists()  # the data dir's own file is not made


def test_nodes_starting_together_on_one_data_dir_share_one_secret(tmp_path: Path) -> None:
    """Node processes on one machine create the data dir's secret at once: one wins, all use it."""
    import threading

    signers: list[TokenSigner] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        signers.append(TokenSigner.from_data_dir(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(signers) == 8
    token = signers[0].issue("L1", "c1", "lead", not_before=NOW - 1, expires=NOW + 1)
    assert all(s.verify(token, now=NOW).role == "lead" for s in signers)
    assert [p.name for p in tmp_path.iterdir()] == ["token_secret"]  # no temporary file left
