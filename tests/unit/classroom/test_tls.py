"""classroom/tls.py: which mode applies, the generated CA + server certificate (made once, reused,
reissued only when needed, keys 0600), and certificates given with --tls-cert/--tls-key."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from classroom.config import ConfigError, ServerConfig, load_config
from classroom.tls import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    certificate_names,
    ensure_certificate,
    fingerprint,
    resolve_tls,
    san_names,
    tls_wanted,
)

NAMES = ["localhost", "127.0.0.1", "::1", "school-server", "10.77.0.1"]


def cfg(**kw: object) -> ServerConfig:
    c = ServerConfig()
    for k, v in kw.items():
        setattr(c, k, v)
    return c


@pytest.mark.parametrize(("settings", "wanted"), [
    ({}, False),                                   # loopback default: plain HTTP
    ({"host": "localhost"}, False),
    ({"host": "::1"}, False),
    ({"host": "0.0.0.0"}, True),                   # a school network: HTTPS
    ({"host": "10.77.0.1"}, True),
    ({"host": "10.77.0.1", "tls": "off"}, False),
    ({"tls": "on"}, True),
    ({"tls": "ON"}, True),
    ({"tls_cert": "c.pem", "tls_key": "k.pem"}, True),
    ({"host": "127.0.0.1", "behind_proxy": True, "public_url": "https://c.example.cn"}, False),
    ({"host": "0.0.0.0", "behind_proxy": True, "public_url": "https://c.example.cn"}, False),
])
def test_modes(settings: dict[str, object], wanted: bool) -> None:
    assert tls_wanted(cfg(**settings)) is wanted


@pytest.mark.parametrize(("settings", "message"), [
    ({"tls": "maybe"}, "expected one of auto, on, off"),
    ({"tls_cert": "c.pem"}, "go together"),
    ({"tls_key": "k.pem"}, "go together"),
    ({"tls": "off", "tls_cert": "c.pem", "tls_key": "k.pem"}, "tls is off"),
    ({"behind_proxy": True}, "needs server.public_url"),
    ({"behind_proxy": True, "public_url": "https://x", "tls": "on"}, "terminates TLS"),
    ({"behind_proxy": True, "public_url": "https://x", "tls_cert": "c", "tls_key": "k"}, "terminates TLS"),
])
def test_contradictions_are_clear_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tls_wanted(cfg(**settings))


def test_settings_from_environment() -> None:
    c = load_config(env={"CLASSROOM_SERVER_TLS_CERT": "/etc/c.pem", "CLASSROOM_SERVER_TLS_KEY": "/etc/k.pem",
                         "CLASSROOM_SERVER_TLS": "on", "CLASSROOM_SERVER_BEHIND_PROXY": "no",
                         "CLASSROOM_SERVER_PUBLIC_URL": "https://classroom.example.cn"})
    assert (c.server.tls_cert, c.server.tls_key, c.server.tls) == ("/etc/c.pem", "/etc/k.pem", "on")
    assert c.server.behind_proxy is False and c.server.public_url == "https://classroom.example.cn"


def test_settings_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text('server:\n  tls: "off"\n  behind_proxy: true\n  public_url: https://a.example.cn/\n')
    c = load_config(path, env={})
    assert (c.server.tls, c.server.behind_proxy) == ("off", True)
    # YAML 1.1 reads a bare off as false: a clear error (docs/https.md says to quote it)
    path.write_text("server:\n  tls: off\n")
    with pytest.raises(ConfigError, match="server.tls: expected a string"):
        load_config(path, env={})


def test_certificate_names() -> None:
    names = certificate_names("0.0.0.0", "https://classroom.county.example.cn:8443/x",
                              ["10.77.0.1", "127.0.0.1"], ["192.0.2.2", "fd00::2"], hostname="School-PC")
    assert names[:3] == ["localhost", "127.0.0.1", "::1"]
    assert {"school-pc", "classroom.county.example.cn", "10.77.0.1", "192.0.2.2", "fd00::2"} <= set(names)
    assert "0.0.0.0" not in names and len(names) == len(set(names))
    assert "10.9.9.9" in certificate_names("10.9.9.9", "", [], [], hostname="")
    assert "2001:db8::5" in certificate_names("[2001:db8::5]", "https://[2001:db8::5]:8443", [], [], hostname="")
    assert "bad name!" not in certificate_names("0.0.0.0", "", [], [], hostname="bad name!")


def test_generates_ca_and_server_certificate(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    gen = ensure_certificate(d, NAMES)
    assert gen.created_ca and gen.issued_server
    for name in (CA_KEY, SERVER_KEY):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / CA_CERT).stat().st_mode) == 0o644
    assert not list(d.glob("*.tmp"))
    server = x509.load_pem_x509_certificate((d / SERVER_CERT).read_bytes())
    ca = x509.load_pem_x509_certificate((d / CA_CERT).read_bytes())
    server.verify_directly_issued_by(ca)
    assert san_names(server) == {"localhost", "127.0.0.1", "::1", "school-server", "10.77.0.1"}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days <= 398
    # Python's own TLS stack accepts the pair, and trusts the server certificate through the CA
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(str(d / SERVER_CERT), str(d / SERVER_KEY))
    client_side = ssl.create_default_context(cafile=str(d / CA_CERT))
    assert client_side.cert_store_stats()["x509_ca"] == 1


def test_reused_across_restarts(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    first = ensure_certificate(d, NAMES)
    again = ensure_certificate(d, list(reversed(NAMES)))
    assert not again.created_ca and not again.issued_server
    assert fingerprint(again.server) == fingerprint(first.server)
    assert fingerprint(again.ca) == fingerprint(first.ca)
    subset = ensure_certificate(d, NAMES[:3])  # fewer names wanted: still good
    assert not subset.issued_server


def test_new_address_reissues_only_the_server_certificate(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    first = ensure_certificate(d, NAMES)
    moved = ensure_certificate(d, [*NAMES[:3], "10.88.0.1"])
    assert moved.issued_server and not moved.created_ca
    assert fingerprint(moved.ca) == fingerprint(first.ca)  # PCs that trust the CA need nothing new
    assert {"10.88.0.1", "10.77.0.1"} <= san_names(moved.server)  # the old address keeps working
    moved.server.verify_directly_issued_by(first.ca)


def test_near_expiry_reissues(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    now = dt.datetime.now(dt.UTC)
    first = ensure_certificate(d, NAMES, now=now)
    later = ensure_certificate(d, NAMES, now=now + dt.timedelta(days=380))
    assert later.issued_server and not later.created_ca
    assert later.server.not_valid_after_utc > first.server.not_valid_after_utc


def test_unreadable_ca_is_replaced(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    first = ensure_certificate(d, NAMES)
    (d / CA_KEY).write_text("garbage")
    again = ensure_certificate(d, NAMES)
    assert again.created_ca and again.issued_server
    assert fingerprint(again.ca) != fingerprint(first.ca)
    again.server.verify_directly_issued_by(again.ca)


def test_server_key_not_matching_is_reissued(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    ensure_certificate(d, NAMES)
    other = ec.generate_private_key(ec.SECP256R1())
    (d / SERVER_KEY).write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    again = ensure_certificate(d, NAMES)
    assert again.issued_server
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(d / SERVER_CERT), str(d / SERVER_KEY))


def test_resolve_generated_banner(tmp_path: Path) -> None:
    setup = resolve_tls(cfg(host="0.0.0.0"), tmp_path, ["10.77.0.1"], [])
    assert setup is not None and setup.generated is not None
    text = "\n".join(setup.banner("https://10.77.0.1:8080"))
    assert fingerprint(setup.generated.ca) in text
    assert "https://10.77.0.1:8080/tls/ca.crt" in text
    assert "受信任的根证书颁发机构" in text and "Trusted Root Certification Authorities" in text
    assert "Manage certificates" in text and "0.0.0.0" not in text
    assert "10.77.0.1" in san_names(setup.generated.server)
    assert resolve_tls(cfg(), tmp_path, [], []) is None  # loopback: plain HTTP


def self_signed(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "given.pem", tmp_path / "given.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_given_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, ["classroom.example.cn"])
    setup = resolve_tls(cfg(host="0.0.0.0", tls_cert=str(cert), tls_key=str(key),
                            public_url="https://classroom.example.cn"), tmp_path, [], [])
    assert setup is not None and setup.generated is None
    assert not (tmp_path / "tls").exists()  # nothing generated
    assert fingerprint(setup.trust_anchor) in setup.banner("https://classroom.example.cn")[0]
    assert setup.notes == []
    wrong = resolve_tls(cfg(host="0.0.0.0", tls_cert=str(cert), tls_key=str(key),
                            public_url="https://other.example.cn"), tmp_path, [], [])
    assert wrong is not None and "does not name other.example.cn" in wrong.notes[0]


def test_given_certificate_errors(tmp_path: Path) -> None:
    cert, _key = self_signed(tmp_path, ["a.example.cn"])
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _cert2, key2 = self_signed(other_dir, ["b.example.cn"])
    with pytest.raises(ConfigError, match="cannot use"):
        resolve_tls(cfg(tls_cert=str(cert), tls_key=str(key2)), tmp_path, [], [])
    with pytest.raises(ConfigError, match="no such file"):
        resolve_tls(cfg(tls_cert=str(tmp_path / "nope.pem"), tls_key=str(key2)), tmp_path, [], [])
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot use"):
        resolve_tls(cfg(tls_cert=str(garbage), tls_key=str(key2)), tmp_path, [], [])
