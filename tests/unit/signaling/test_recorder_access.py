"""Recorder admission logic (signaling/recorder_access.py) without sockets: the per-launch nonce
is bound to its lesson, used once, short-lived, and dies with the lesson's recording. (The
process binding over real TCP sockets is tested in tests/integration/recorder/test_supervision.py.)"""

from __future__ import annotations

import pytest

from signaling.recorder_access import REFUSED, RecorderAccess
from signaling.tokens import TokenClaims, TokenError


def claims(lesson: str, nonce: str) -> TokenClaims:
    return TokenClaims(lesson, "recorder", "recorder", "recorder", 0.0, 2e9, "", nonce)


def refused(access: RecorderAccess, c: TokenClaims, why: str) -> None:
    with pytest.raises(TokenError, match=why) as info:
        access.admit(c)
    assert info.value.code == REFUSED


def test_a_launch_admits_one_join_of_its_lesson() -> None:
    access = RecorderAccess(check_process=False)
    nonce = access.grant("L1")
    refused(access, claims("L1", ""), "not the lesson's current")
    refused(access, claims("L1", "forged"), "not the lesson's current")
    refused(access, claims("L2", nonce), "no recorder was launched")
    access.admit(claims("L1", nonce))
    refused(access, claims("L1", nonce), "joined already")
    assert access.refused == 4


def test_a_new_launch_or_the_lessons_end_revokes_the_old_token() -> None:
    access = RecorderAccess(check_process=False)
    old = access.grant("L1")
    new = access.grant("L1")
    refused(access, claims("L1", old), "not the lesson's current")
    access.revoke("L1")
    refused(access, claims("L1", new), "no recorder was launched")


def test_an_old_launch_is_refused_and_an_unbound_one_waits_for_its_process() -> None:
    access = RecorderAccess(ttl_s=0.0, check_process=False)
    refused(access, claims("L1", access.grant("L1")), "too old")
    strict = RecorderAccess()
    nonce = strict.grant("L1")
    refused(strict, claims("L1", nonce), "not started yet")
    strict.bind(nonce, 1)  # pid 1 owns no socket of ours
    refused(strict, claims("L1", nonce), "not the launched recorder's")
    grant = strict.granted("L1")
    assert grant is not None and grant.pid == 1 and not grant.used


def test_tokens_carry_the_nonce_only_when_there_is_one() -> None:
    from signaling.tokens import TokenSigner

    signer = TokenSigner(b"k" * 32)
    assert signer.verify(signer.issue("L", "recorder", "recorder", nonce="n1")).nonce == "n1"
    plain = signer.issue("L", "c", "lead")
    assert signer.verify(plain).nonce == ""
    assert "nonce" not in TokenClaims("L", "c", "lead", "n", 0, 1).to_json()
