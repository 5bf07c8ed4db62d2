"""TLS for the weight exchange: a per-run key and certificate, pinned by the workers.

The driver makes a fresh EC P-256 key and a self-signed certificate for each fit
(PyPI's `cryptography`; no cryptography is written here). The certificate - the
pin - and a 32-byte run secret travel to the workers inside the task, i.e. over
Spark's own RPC, which is encrypted when spark.network.crypto.enabled (or
spark.ssl.rpc.enabled) is on. A worker trusts that one certificate and nothing
else, so it talks only to its run's driver; it proves the run secret inside
the TLS session, never in clear. TLS 1.3 only.
"""
from __future__ import annotations

import datetime
import functools
import ipaddress
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_LOG = logging.getLogger("pysparknet")
_WARNED_RPC = False


@dataclass(frozen=True)
class RunCredentials:
    """What one fit's exchange proves and checks; the key never leaves the driver."""

    certificate: bytes  # PEM: the pin the workers trust
    key: bytes  # PEM, unencrypted, kept in the driver's memory only


@dataclass(frozen=True)
class RingKeys:
    """What a run's tasks carry for the links among its workers (exchange='ring'):
    the ring's own certificate and key, every worker both ends (None: TLS off)."""

    certificate: Optional[bytes]
    key: Optional[bytes]

    @classmethod
    def issue(cls, tls: bool) -> "RingKeys":
        if not tls:
            return cls(None, None)
        credentials = generate("pysparknet-ring")
        return cls(credentials.certificate, credentials.key)


def generate(host: str) -> RunCredentials:
    """A fresh key and a self-signed certificate naming `host` (valid for 30 days)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pysparknet weight exchange")])
    try:
        alt_name = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([alt_name]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return RunCredentials(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()))


def server_context(credentials: RunCredentials) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # load_cert_chain reads files only: a private folder, removed at once.
    with tempfile.TemporaryDirectory(prefix="sparknet-tls-") as folder:
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for path, data in ((cert_path, credentials.certificate), (key_path, credentials.key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        context.load_cert_chain(cert_path, key_path)
    return context


@functools.lru_cache(maxsize=8)
def client_context(certificate: bytes) -> ssl.SSLContext:
    """Trusts exactly the run's certificate. The name is not checked: the pin is the
    identity, and executors may reach the driver by another name (NAT, containers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=certificate.decode("ascii"))
    return context


def spark_rpc_encrypted(conf) -> bool:
    """Whether Spark encrypts what carries the tasks (and so the pin and secret)."""
    def on(key: str) -> bool:
        return (conf.get(key, "false") or "false").strip().lower() == "true"
    return on("spark.network.crypto.enabled") or on("spark.ssl.rpc.enabled")


def warn_if_rpc_in_clear(conf) -> None:
    """Once per process: what an unencrypted Spark RPC means for the exchange."""
    global _WARNED_RPC
    if _WARNED_RPC or spark_rpc_encrypted(conf):
        return
    _WARNED_RPC = True
    _LOG.warning(
        "Spark's RPC is not encrypted (spark.network.crypto.enabled is off): the weight "
        "exchange itself is TLS, but its certificate pin and run secret reach the executors "
        "inside the tasks, which anyone who can read the network between the driver and "
        "the executors can read too, and then pose as a worker. Set spark.authenticate=true, "
        "spark.authenticate.secret and spark.network.crypto.enabled=true on untrusted "
        "networks.")
