"""Self-signed TLS certificate for the simulator, generated at start.

A real PVE node serves ``/etc/pve/local/pve-ssl.pem`` signed by the cluster CA; clients pin it by its
SHA-256 fingerprint (colon hex, upper case, as the GUI shows it). The simulator generates a fresh
certificate per run so that clients exercise the same pinning path: trust the PEM file (``ca_file``) or pin
the fingerprint.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    """Where the PEM files were written and the certificate's fingerprint."""

    cert_file: Path
    key_file: Path
    fingerprint: str


def fingerprint_of(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as ``AB:CD:…`` (the form PVE's GUI and ``pvenode cert info`` show)."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def make_certificate(directory: Path, hostnames: tuple[str, ...] = ("localhost",)) -> CertFiles:
    """Write a fresh self-signed certificate valid for 127.0.0.1, ::1 and ``hostnames``.

    ECDSA P-256 keeps generation in the milliseconds (RSA-2048 would cost ~100 ms per simulator start,
    and tests start many). The certificate is its own CA (basicConstraints CA:TRUE) so it can be used
    directly as ``verify=`` trust anchor.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PVE Cluster Node (pvemcp simulator)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt_names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file = directory / "pve-ssl.pem"
    key_file = directory / "pve-ssl.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return CertFiles(cert_file=cert_file, key_file=key_file, fingerprint=fingerprint_of(cert))
