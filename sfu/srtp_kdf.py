"""The SRTP key derivation (RFC 3711 section 4.3) for the AEAD profiles (RFC 7714 section 11).

The DTLS-SRTP exporter (RFC 5764) gives a *master* key and salt per direction; packets are
protected with *session* keys derived from them. For AES-GCM only two are needed: the session
encryption key (label 0x00, as long as the master key) and the 96-bit session salt (label 0x02).
The PRF is AES in counter mode keyed with the master key (AES-128 or AES-256 as the master key's
length), with the key derivation rate 0 (the index term r is 0, so labels are all that vary):

    x = (label at byte 7 of a 16-byte block, 0 elsewhere) XOR (master salt || zero padding)
    output = AES_k(x), AES_k(x + 1), ... (the counter in the last 16 bits)

The 96-bit GCM master salt is padded with zeros to the 112 bits the RFC 3711 PRF takes, which
is also what libsrtp does, so these keys are the ones pylibsrtp's session uses
(tests/unit/sfu/test_aead.py checks that byte for byte).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LABEL_RTP_ENCRYPTION = 0x00
LABEL_RTP_SALT = 0x02
GCM_SALT_LEN = 12


@dataclass(frozen=True)
class SessionKeys:
    key: bytes  # the AES-GCM session key (16 or 32 bytes)
    salt: bytes  # the 12-byte session salt the IV is XORed with


def _prf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    block = bytearray(16)
    block[: len(master_salt)] = master_salt
    block[7] ^= label
    encryptor = Cipher(algorithms.AES(master_key), modes.ECB()).encryptor()
    out = bytearray()
    counter = 0
    while len(out) < length:
        block[14], block[15] = counter >> 8, counter & 0xFF
        out += encryptor.update(bytes(block))
        counter += 1
    return bytes(out[:length])


def gcm_session_keys(master_key: bytes, master_salt: bytes) -> SessionKeys:
    """The RTP session key and salt of an AEAD_AES_{128,256}_GCM master key and 12-byte salt."""
    if len(master_key) not in (16, 32) or len(master_salt) != GCM_SALT_LEN:
        raise ValueError("AES-GCM SRTP takes a 16- or 32-byte master key and a 12-byte master salt")
    return SessionKeys(
        key=_prf(master_key, master_salt, LABEL_RTP_ENCRYPTION, len(master_key)),
        salt=_prf(master_key, master_salt, LABEL_RTP_SALT, GCM_SALT_LEN),
    )
