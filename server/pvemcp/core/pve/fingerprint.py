"""SHA-256 certificate fingerprints in the colon-hex form the PVE GUI shows.

Kept apart from the TLS transport so that reading a configuration does not import the HTTP stack.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["fingerprint_of", "normalize_fingerprint"]

_HEX_RE = re.compile(r"^[0-9A-F]{64}$")


def normalize_fingerprint(value: str) -> str:
    """Canonical ``AB:CD:...`` (upper-case, colon-separated) form of a SHA-256 fingerprint.

    Accepts any case, with or without colons/spaces, and an optional ``sha256:``/``SHA256 Fingerprint=``
    prefix as printed by ``openssl x509 -fingerprint -sha256``.
    """
    text = value.strip()
    if "=" in text:
        text = text.split("=", 1)[1]
    if text.lower().startswith("sha256:"):
        text = text[7:]
    hexdigits = re.sub(r"[\s:]", "", text).upper()
    if not _HEX_RE.match(hexdigits):
        raise ValueError(
            f"expected a SHA-256 fingerprint: 32 bytes as hex, e.g. AB:CD:EF:...; got {len(hexdigits)} hex characters"
        )
    return ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2))


def fingerprint_of(der: bytes) -> str:
    """SHA-256 fingerprint of a DER-encoded certificate, in the canonical colon-hex form."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))
