"""Bearer-token authentication for the streamable HTTP door.

Why a static verifier and not a full OAuth flow: the common deployment is one operator handing one
agent host a shared secret. The token comes from ``PVEMCP_HTTP_TOKEN`` or ``PVEMCP_HTTP_TOKEN_FILE``
(the file may hold several ``NAME TOKEN`` lines so that each client shows up under its own name in
the audit ledger). Tokens are compared in constant time, against every configured token, so neither
the length nor the position of a match leaks through timing. The secret itself never leaves this
module: the ``AccessToken`` handed to the SDK carries a placeholder, never the bearer value.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.provider import AccessToken

TOKEN_ENV = "PVEMCP_HTTP_TOKEN"
TOKEN_FILE_ENV = "PVEMCP_HTTP_TOKEN_FILE"
DEFAULT_CALLER = "http-bearer"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{16,512}$")  # printable ASCII, header-safe, long enough to resist guessing


class AuthConfigError(ValueError):
    """The HTTP auth configuration is unusable; the message never contains a token."""


@dataclass(frozen=True)
class BearerTokens:
    """The accepted bearer tokens, each with the caller name it authenticates as.

    Only SHA-256 digests are kept, so a repr, a traceback or a memory dump of this object does
    not reveal a usable token.
    """

    digests: tuple[tuple[bytes, str], ...]

    @classmethod
    def from_mapping(cls, tokens: Mapping[str, str]) -> BearerTokens:
        """Build from ``{caller_name: token}``; validates both sides."""
        if not tokens:
            raise AuthConfigError("no bearer token configured")
        entries: list[tuple[bytes, str]] = []
        for name, token in tokens.items():
            if not _NAME_RE.match(name):
                raise AuthConfigError(f"bearer token name {name!r} must match {_NAME_RE.pattern}")
            if not _TOKEN_RE.match(token):
                raise AuthConfigError(
                    f"bearer token for {name!r} must be 16-512 printable ASCII characters without spaces"
                )
            entries.append((_digest(token), name))
        return cls(tuple(entries))

    def caller_for(self, presented: str) -> str | None:
        """Return the caller name whose token equals ``presented``, in constant time, else None."""
        probe = _digest(presented)
        found: str | None = None
        for digest, name in self.digests:  # no early exit: every token is compared every time
            if hmac.compare_digest(digest, probe) and found is None:
                found = name
        return found

    def __repr__(self) -> str:
        return f"BearerTokens(<{len(self.digests)} token(s)>)"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class StaticTokenVerifier:
    """The SDK ``TokenVerifier`` over a fixed set of bearer tokens."""

    def __init__(self, tokens: BearerTokens) -> None:
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        """Accept a configured token; the caller name becomes both client_id and subject."""
        caller = self._tokens.caller_for(token)
        if caller is None:
            return None
        # The real token is deliberately not stored on the AccessToken (it would travel into contextvars).
        return AccessToken(token="<redacted>", client_id=caller, subject=caller, scopes=[])


def load_bearer_tokens(env: Mapping[str, str] | None = None) -> BearerTokens | None:
    """Read the bearer token(s) from the environment; None when none is configured.

    ``PVEMCP_HTTP_TOKEN`` is a single token (caller ``http-bearer``). ``PVEMCP_HTTP_TOKEN_FILE`` names
    a file with either one bare token, or one ``NAME TOKEN`` pair per line (``#`` comments allowed).
    Setting both is refused so that an operator never wonders which one is in force.
    """
    env = os.environ if env is None else env
    inline = env.get(TOKEN_ENV, "").strip()
    path = env.get(TOKEN_FILE_ENV, "").strip()
    if inline and path:
        raise AuthConfigError(f"set either {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
    if inline:
        return BearerTokens.from_mapping({DEFAULT_CALLER: inline})
    if path:
        return BearerTokens.from_mapping(_read_token_file(Path(path)))
    return None


def _read_token_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthConfigError(f"{TOKEN_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise AuthConfigError(f"{TOKEN_FILE_ENV}: {path} holds no token")
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return {DEFAULT_CALLER: lines[0]}
    tokens: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2:
            raise AuthConfigError(f"{TOKEN_FILE_ENV}: {path}: entry {number} must be 'NAME TOKEN'")
        name, token = parts
        if name in tokens:
            raise AuthConfigError(f"{TOKEN_FILE_ENV}: {path}: name {name!r} appears twice")
        tokens[name] = token
    return tokens


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine.

    ``localhost`` counts (it resolves to loopback on every sane system); wildcard binds
    (``0.0.0.0``, ``::``) and every other name or address do not — fail closed.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
