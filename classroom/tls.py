"""HTTPS for ``classroom serve``: which mode applies, the certificate the server makes for itself,
and the TLS context aiohttp listens with.

Browsers open the camera and microphone only on a secure origin (https://, or http:// on
loopback). So a server that classrooms reach over the school network must speak HTTPS:

- ``server.tls_cert`` / ``server.tls_key`` (``--tls-cert``/``--tls-key``): PEM files, e.g. issued
  by the bureau's CA or a public one. Used as they are.
- otherwise, in mode ``auto`` on a non-loopback bind (and in mode ``on`` anywhere), the server makes
  its own: a small certificate authority (``<data>/tls/ca.crt``, kept for 10 years; this is what a
  school's IT person trusts once per PC) and a server certificate signed by it
  (``<data>/tls/server.crt``) naming the host's addresses and ``public_url``'s host. Both are
  reused across restarts; the server certificate alone is reissued when a name is missing or it
  nears expiry, so a PC that trusts the CA keeps trusting the server. Keys are 0600.
- mode ``off``, ``behind_proxy``, or a loopback bind in mode ``auto``: plain HTTP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from classroom.config import ConfigError, ServerConfig
from classroom.links import is_loopback, is_wildcard, url_host

log = logging.getLogger("classroom.tls")

MODES = ("auto", "on", "off")
CA_DAYS = 3650
SERVER_DAYS = 397  # under the 398 days browsers accept for a server certificate
RENEW_BEFORE_DAYS = 30
CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
CA_ROUTE = "/tls/ca.crt"


def tls_wanted(cfg: ServerConfig) -> bool:
    """Whether the server listens with HTTPS; ConfigError for contradictory settings."""
    mode = cfg.tls.strip().lower()
    if mode not in MODES:
        raise ConfigError(f"server.tls: expected one of {', '.join(MODES)}, got {cfg.tls!r}")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ConfigError("server.tls_cert and server.tls_key go together: give both PEM files or neither")
    if cfg.behind_proxy:
        if cfg.tls_cert or mode == "on":
            raise ConfigError("server.behind_proxy: the reverse proxy terminates TLS; the server itself speaks "
                              "plain HTTP (drop tls_cert/tls_key and tls: on, or behind_proxy)")
        if not cfg.public_url:
            raise ConfigError("server.behind_proxy needs server.public_url (the https:// address classrooms open "
                              "through the proxy) so that links point at the proxy")
        return False
    if mode == "off":
        if cfg.tls_cert:
            raise ConfigError("server.tls is off but tls_cert/tls_key are given")
        return False
    if cfg.tls_cert or mode == "on":
        return True
    return not is_loopback(cfg.host)


def certificate_names(
    host: str, public_url: str, ice_addresses: list[str], detected: list[str], hostname: str | None = None
) -> list[str]:
    """The subjectAltNames a generated server certificate carries (IP addresses and DNS names)."""
    names = ["localhost", "127.0.0.1", "::1"]
    machine = socket.gethostname() if hostname is None else hostname
    candidates = [machine, *([] if is_wildcard(host) else [host]), url_host(public_url), *ice_addresses, *detected]
    for name in candidates:
        name = name.strip().strip("[]").lower()
        if name and not is_wildcard(name) and name not in names and _valid_name(name):
            names.append(name)
    return names


def _valid_name(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    return all(0 < len(label) < 64 and all(c.isalnum() or c == "-" for c in label) for label in labels)


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def san_names(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | {
        v.lower() for v in ext.get_values_for_type(x509.DNSName)
    }


def fingerprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None) -> str:
    return cert.fingerprint(algorithm or hashes.SHA256()).hex(":").upper()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only (created 0600, then renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class GeneratedCertificate:
    """The server's own CA and server certificate on disk, and what happened to them this start."""

    directory: Path
    ca: x509.Certificate
    server: x509.Certificate
    created_ca: bool = False
    issued_server: bool = False

    @property
    def ca_path(self) -> Path:
        return self.directory / CA_CERT

    @property
    def cert_path(self) -> Path:
        return self.directory / SERVER_CERT

    @property
    def key_path(self) -> Path:
        return self.directory / SERVER_KEY


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        if (directory / CA_CERT).exists():
            log.warning("cannot read the generated CA in %s (%s): making a new one", directory, exc)
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        log.warning("the generated CA's key in %s does not match its certificate: making a new one", directory)
        return None
    return cert, key


def _server_still_good(
    directory: Path, ca: x509.Certificate, names: list[str], now: dt.datetime
) -> x509.Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / SERVER_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / SERVER_KEY).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.issuer != ca.subject:
        return None
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return None
    if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return None
    wanted = {n.lower() if not _is_ip(n) else str(ipaddress.ip_address(n)) for n in names}
    if not wanted <= san_names(cert):
        return None
    return cert


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _new_ca(directory: Path, now: dt.datetime, label: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "三个课堂 classroom"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"classroom CA {label}"[:64]),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(directory / CA_KEY, _key_pem(key))
    _write_public(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _new_server(
    directory: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str], now: dt.datetime
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "三个课堂 classroom"),
        x509.NameAttribute(NameOID.COMMON_NAME, (names[3] if len(names) > 3 else names[0])[:64]),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(directory / SERVER_KEY, _key_pem(key))
    _write_public(directory / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return cert


def ensure_certificate(directory: Path, names: list[str], now: dt.datetime | None = None) -> GeneratedCertificate:
    """Reuse the CA and server certificate in ``directory`` when they are still good for
    ``names``; otherwise make what is missing (the CA only when it is missing or unreadable)."""
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    created_ca = False
    loaded = _load_ca(directory)
    if loaded is None or loaded[0].not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        label = next((n for n in names if n not in ("localhost", "127.0.0.1", "::1")), "localhost")
        loaded = _new_ca(directory, now, label)
        created_ca = True
    ca, ca_key = loaded
    server = None if created_ca else _server_still_good(directory, ca, names, now)
    issued = server is None
    if server is None:
        # Keep every name the old certificate had (an address that comes back keeps working).
        try:
            old = x509.load_pem_x509_certificate((directory / SERVER_CERT).read_bytes())
            extra = sorted(san_names(old) - {n.lower() for n in names}) if not created_ca else []
        except (OSError, ValueError):
            extra = []
        server = _new_server(directory, ca, ca_key, [*names, *extra], now)
    return GeneratedCertificate(directory, ca, server, created_ca, issued)


@dataclass
class TlsSetup:
    """What ``classroom serve`` listens with, and what it tells the operator."""

    context: ssl.SSLContext
    cert_path: Path
    key_path: Path
    generated: GeneratedCertificate | None = None
    given: x509.Certificate | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def trust_anchor(self) -> x509.Certificate:
        """The certificate a PC has to trust: the generated CA, or the given certificate."""
        if self.generated is not None:
            return self.generated.ca
        assert self.given is not None
        return self.given

    def banner(self, base_url: str) -> list[str]:
        anchor = self.trust_anchor
        sha256 = fingerprint(anchor)
        if self.generated is None:
            return [f"classroom: HTTPS with {self.cert_path} (SHA-256 {sha256})"]
        gen = self.generated
        what = "made just now" if gen.created_ca else "the same as on earlier starts"
        lines = [
            f"classroom: HTTPS with a certificate this server made for itself ({gen.cert_path}), valid for "
            + ", ".join(sorted(san_names(gen.server))) + ".",
            f"  It is signed by this server's own certificate authority (CA), {what}: {gen.ca_path}",
            f"  Download it on a classroom PC: {base_url}{CA_ROUTE}",
            f"  CA SHA-256 fingerprint 指纹: {sha256}",
            f"  CA SHA-1 (what Windows shows as 指纹 Thumbprint): {fingerprint(anchor, hashes.SHA1())}",  # noqa: S303
            "  Until a PC trusts this CA, its browser warns (您的连接不是私密连接 / Your connection is not private).",
            "  To trust it, once per PC (compare the fingerprint first):",
            "   Windows (Chrome, Edge, 360 use the Windows store): double-click ca.crt →",
            "     安装证书 Install Certificate → 本地计算机 Local Machine →",
            "     将所有的证书都放入下列存储 Place all certificates in the following store → 浏览 Browse →",
            "     受信任的根证书颁发机构 Trusted Root Certification Authorities → 完成 Finish; restart the browser.",
            "     Every PC of a school at once: Group Policy 组策略 → Computer Configuration → Windows Settings →",
            "     Security Settings → Public Key Policies → Trusted Root Certification Authorities → Import ca.crt.",
            "   Chromium/Chrome on Linux (UOS 统信, Kylin 麒麟): Settings 设置 → Privacy and security 隐私和安全 →",
            "     Security 安全 → Manage certificates 管理证书 → Authorities 授权机构 → Import 导入 ca.crt →",
            "     tick 'Trust this certificate for identifying websites' 信任该证书，以标识网站.",
            "  Or give the server a certificate the PCs trust already (--tls-cert/--tls-key), or run it behind",
            "  a reverse proxy (docs/https.md).",
        ]
        if gen.issued_server and not gen.created_ca:
            lines.insert(2, "  (the server certificate was reissued for the current addresses; the CA is unchanged, "
                            "PCs that trust it need nothing new)")
        return lines + self.notes


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for what, path in (("tls_cert", cert), ("tls_key", key)):
        if not path.is_file():
            raise ConfigError(f"server.{what}: {path}: no such file")
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"server.tls_cert/tls_key: cannot use {cert} with {key}: {exc} "
                          "(PEM files, the key unencrypted and matching the certificate?)") from None
    return context


def resolve_tls(cfg: ServerConfig, data_dir: Path, ice_addresses: list[str], detected: list[str]) -> TlsSetup | None:
    """The TLS set-up for this start, or None for plain HTTP."""
    if not tls_wanted(cfg):
        return None
    if cfg.tls_cert:
        cert_path, key_path = Path(cfg.tls_cert), Path(cfg.tls_key)
        context = _context(cert_path, key_path)
        given = x509.load_pem_x509_certificate(cert_path.read_bytes())
        setup = TlsSetup(context, cert_path, key_path, given=given)
        names = certificate_names(cfg.host, cfg.public_url, [], [], hostname="")
        missing = [n for n in names[3:] if n not in san_names(given)]
        if missing:
            setup.notes.append(f"classroom: warning: {cert_path} does not name {', '.join(missing)}; browsers "
                               "opening those addresses will refuse it")
        return setup
    names = certificate_names(cfg.host, cfg.public_url, ice_addresses, detected)
    generated = ensure_certificate(data_dir / "tls", names)
    if generated.created_ca:
        log.info("generated a certificate authority %s (SHA-256 %s)", generated.ca_path, fingerprint(generated.ca))
    if generated.issued_server:
        log.info("issued server certificate %s for %s", generated.cert_path, ", ".join(names))
    context = _context(generated.cert_path, generated.key_path)
    return TlsSetup(context, generated.cert_path, generated.key_path, generated=generated)
