"""The key replicas share, so a confirm token or a sealed request state minted by one verifies on all.

The file holds at least 32 characters of secret randomness (``openssl rand -hex 32``); each use gets
its own key derived from it, so the confirm tokens' key and the request-state key are never the same.
Like the ledger key, a file readable by group or others is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

from pvemcp.core.state.store import StateError

__all__ = ["derive", "load_shared_secret", "request_state_key"]

MIN_CHARS = 32


def load_shared_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret in ``path``; :class:`StateError` naming the fix when it is missing, weak or exposed."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StateError(f"secret_key_file {p} cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise StateError(f"secret_key_file {p} is not text; write e.g. the output of `openssl rand -hex 32`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StateError(f"secret_key_file {p} is readable by others; run: chmod 600 {p}")
    if len(text) < MIN_CHARS:
        raise StateError(
            f"secret_key_file {p} holds {len(text)} characters; it needs at least {MIN_CHARS} "
            "(e.g. the output of `openssl rand -hex 32`)"
        )
    return text.encode("utf-8")


def derive(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the shared secret."""
    return hmac.new(secret, b"pvemcp-key-v1\x00" + purpose.encode("ascii"), hashlib.sha256).digest()


def request_state_key(secret_key_file: Path | None) -> bytes | None:
    """The key that seals 2026-era request state on every replica; ``None`` = a random key per process."""
    if secret_key_file is None:
        return None
    return derive(load_shared_secret(secret_key_file), "request-state")
