"""Redaction of secrets from arguments and texts before they reach the audit ledger (or a log).

Two layers, because secrets arrive in two shapes:

* **by key**: the value of any key that looks secret — ``password``, ``cipassword``, ``token``,
  ``secret``, ``ticket``, ``sshkeys``, ``confirm_token``, ``*-key``, ... (case-insensitive, ``_`` and
  ``-`` alike, at any depth of dicts and lists) — is replaced by ``"***"`` whatever its type;
* **by shape**: inside any remaining string, Proxmox credentials (``PVEAPIToken=...``,
  ``PVEAuthCookie=...``), PEM private keys, passwords in URLs (``https://user:pw@host``) and
  ``password=...``-style items of property strings are masked.

``body`` is deliberately *not* a secret key: the door logs each request as ``{"method", "path",
"body": {...}}`` and the arguments inside stay useful while their secret keys are still masked.

Over-redaction is the accepted failure mode: a ledger that hides a harmless ``content`` value is
less useful, one that keeps a password is a leak. Redaction never mutates its input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "is_secret_key", "redact", "redact_text"]

MASK = "***"

_EXACT = {
    "key",
    "pass",
    "pwd",
    "otp",
    "totp",
    "auth",
    "sshkeys",
    "ssh-public-keys",
    "keyring",
    "data",  # ACME DNS plugin credentials
    "input-data",  # stdin of guest-agent exec
    "content",  # file contents written into a guest
    "header",
    "headers",
    "otel-headers",
    "u2f",
    "webauthn",
    "value",  # TFA codes
}
_SUBSTRINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "ticket",
    "credential",
    "private",
    "apikey",
    "challenge",
    "cookie",
    "authorization",
)
_NOT_SECRET = {"tokenid", "tokens"}

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), MASK),
    (re.compile(r"(PVEAPIToken=)[^\s,;\"']+", re.I), r"\1" + MASK),
    (re.compile(r"(PVEAuthCookie=)[^\s,;\"']+", re.I), r"\1" + MASK),
    (re.compile(r"(CSRFPreventionToken:?\s*)[^\s,;\"']+", re.I), r"\1" + MASK),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@", re.I), r"\1" + MASK + "@"),
    (
        re.compile(r"(\b(?:[a-z-]*password|secret|token|ticket|key|passphrase)\s*[=:]\s*)[^\s,;\"']+", re.I),
        r"\1" + MASK,
    ),
)


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def is_secret_key(key: str, extra_keys: Iterable[str] = ()) -> bool:
    """Whether values under ``key`` must be masked (see module docstring)."""
    k = _norm(key)
    if k in _NOT_SECRET:
        return False
    if k in _EXACT or k in {_norm(e) for e in extra_keys}:
        return True
    if k.endswith("-key"):
        return True
    compact = k.replace("-", "")
    return any(s in compact for s in _SUBSTRINGS)


def redact_text(text: str) -> str:
    """Mask credentials recognisable by their shape inside free text."""
    out = text
    for pattern, repl in _TEXT_PATTERNS:
        out = pattern.sub(repl, out)
    return out


def redact(value: Any, *, extra_keys: Iterable[str] = (), max_chars: int | None = None) -> Any:
    """A JSON-safe copy of ``value`` with secrets masked (by key at any depth, and by shape).

    Tuples and sets become lists, non-JSON scalars their ``str``; with ``max_chars``, longer
    strings are cut (the ledger keeps lines small).
    """
    extras = tuple(extra_keys)

    def walk(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): (MASK if is_secret_key(str(k), extras) else walk(x)) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if isinstance(v, set | frozenset):
            return sorted((walk(x) for x in v), key=repr)
        if isinstance(v, str):
            s = redact_text(v)
            if max_chars is not None and len(s) > max_chars:
                s = s[:max_chars] + f"...[{len(s) - max_chars} more characters]"
            return s
        if v is None or isinstance(v, bool | int):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else str(v)
        return walk(str(v))

    return walk(value)
