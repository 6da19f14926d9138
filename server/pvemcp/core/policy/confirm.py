"""Single-use confirmation tokens: the fallback for clients that cannot show an elicitation form.

The first call of an action that needs confirmation returns a preview and a token; the second call,
with the *same* arguments plus ``confirm_token``, runs the action. A token is:

* **bound** to the tool, the caller and the canonical JSON of a mapping the App gives — the
  *plan's digest* (``{"plan": <sha256 of the requests and the objects they touch>}``), not the
  arguments: a token previewed for VM 106 by ``tag: x`` cannot stop VM 105 after the agent tagged
  it too, because the plan made just before sending is not the one the token was issued for (the
  store reports ``other_arguments``; the App calls that ``plan_changed``). It cannot be replayed for
  another guest, another tool or by another client either;
* **single-use**: a redeemed token is refused afterwards;
* **short-lived** (``ttl_s``, default 5 minutes), measured on an injectable monotonic clock;
* **unforgeable**: ``base64url(nonce ‖ expiry ‖ HMAC-SHA256(secret, nonce ‖ expiry)[:16])``, 46
  characters. Because the expiry is inside the MAC, an expired token is recognised as *expired*
  even after its entry has been pruned, and anything not minted here is *unknown*.

The binding itself stays server-side (the token is only a handle), so a token leaks nothing about
the arguments. With the default random ``secret`` tokens die with the process, which is the
intended behaviour after a restart.

A failed redemption raises :class:`ConfirmationError` with a distinct
:class:`ConfirmationFailure` reason and a message the model can act on. A mismatch (other
arguments, tool or caller) does **not** consume the token: the binding already makes it useless for
anything but the previewed action, and not burning it lets a client that garbled its retry try
again; another caller cannot spend someone else's token either.

Several replicas (``spender`` given, see :mod:`pvemcp.core.state`): the secret is the replicas'
shared key and expiry is wall-clock time, and the token also carries the binding —
``nonce ‖ expiry ‖ HMAC(tool)[:8] ‖ HMAC(caller)[:8] ‖ HMAC(arguments)[:8] ‖ HMAC(all of it)[:16]`` —
so any replica can check it without the issuer's memory, still telling a wrong tool, caller or
arguments apart. :meth:`ConfirmationStore.redeem_once` then spends the token's nonce in the shared
store, which accepts it exactly once across all replicas.

Concurrency: every method is synchronous, never awaits and never blocks on I/O, so it is atomic
with respect to the event loop; a ``threading.Lock`` (held for microseconds) also makes it safe
across threads. Memory is bounded: expired entries are pruned on every issue and at most
``max_entries`` are kept (the oldest are evicted first; an evicted token then reads as unknown).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pvemcp.core.policy._canonical import canonical_bytes

if TYPE_CHECKING:
    from pvemcp.core.state.store import TokenSpender

__all__ = ["ConfirmationError", "ConfirmationFailure", "ConfirmationStore"]

_NONCE = 12
_EXP = 6
_TAG = 16
_TOKEN_BYTES = _NONCE + _EXP + _TAG
_DOMAIN = b"pvemcp-confirm-v1\x00"
_BIND = 8  # each of the three binding tags of a shared token
_SHARED_BYTES = _NONCE + _EXP + 3 * _BIND + _TAG
_SHARED_DOMAIN = b"pvemcp-confirm-shared-v1\x00"


class ConfirmationFailure(StrEnum):
    """Why a token was refused."""

    UNKNOWN = "unknown"
    """Not minted by this server (forged, altered, malformed, from before a restart, or evicted)."""
    EXPIRED = "expired"
    USED = "used"
    OTHER_TOOL = "other_tool"
    OTHER_ARGUMENTS = "other_arguments"
    OTHER_CALLER = "other_caller"


_MESSAGES: dict[ConfirmationFailure, str] = {
    ConfirmationFailure.UNKNOWN: (
        "the confirmation token is not valid (not issued by this server, or altered); "
        "call again without confirm_token to get a new preview"
    ),
    ConfirmationFailure.EXPIRED: (
        "the confirmation token has expired; call again without confirm_token to get a new preview"
    ),
    ConfirmationFailure.USED: (
        "the confirmation token was already used (each token runs its action once); "
        "call again without confirm_token to get a new preview"
    ),
    ConfirmationFailure.OTHER_TOOL: "the confirmation token was issued for another tool",
    ConfirmationFailure.OTHER_ARGUMENTS: (
        "the confirmation token was issued for a different plan (other arguments, targets or target "
        "state); repeat exactly the arguments of the preview, or call without confirm_token to get a new preview"
    ),
    ConfirmationFailure.OTHER_CALLER: "the confirmation token was issued to another caller",
}


class ConfirmationError(Exception):
    """A token was refused; ``reason`` says why, ``str(exc)`` says what to do."""

    def __init__(self, reason: ConfirmationFailure) -> None:
        self.reason = reason
        super().__init__(_MESSAGES[reason])


@dataclass
class _Entry:
    tool: str
    caller: str | None
    digest: bytes
    expires_ms: int
    used: bool = False


class ConfirmationStore:
    """Issues and redeems single-use confirmation tokens (see module docstring)."""

    def __init__(
        self,
        secret: bytes | None = None,
        ttl_s: float = 300.0,
        clock: Callable[[], float] | None = None,
        *,
        max_entries: int = 10_000,
        token_field: str = "confirm_token",
        spender: TokenSpender | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if secret is not None and len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._ttl_ms = max(1, int(ttl_s * 1000))
        # A single process measures on its monotonic clock; replicas on several machines share only the wall clock.
        if clock is None:
            clock = time.time if spender is not None else time.monotonic
        self._clock = clock
        self._spender = spender
        # Shared tokens expire on the wall clock that every replica reads alike (ms since 1970 fit in 6 bytes).
        self._epoch = 0.0 if spender is not None else clock()
        self._max = max_entries
        self.token_field = token_field
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    # -- internals -------------------------------------------------------------------------

    def _now_ms(self) -> int:
        # Milliseconds since the store was created: non-negative and small enough for 6 bytes.
        return max(0, int((self._clock() - self._epoch) * 1000))

    def _tag(self, nonce: bytes, exp: bytes) -> bytes:
        return hmac.new(self._secret, _DOMAIN + nonce + exp, hashlib.sha256).digest()[:_TAG]

    def _bind_tags(self, nonce: bytes, tool: str, caller: str | None, digest: bytes) -> tuple[bytes, bytes, bytes]:
        def tag(label: bytes, value: bytes) -> bytes:
            return hmac.new(self._secret, _SHARED_DOMAIN + label + nonce + value, hashlib.sha256).digest()[:_BIND]

        who = b"\x00" if caller is None else b"\x01" + caller.encode("utf-8")
        return tag(b"tool\x00", tool.encode("utf-8")), tag(b"caller\x00", who), tag(b"args\x00", digest)

    def _shared_tag(self, body: bytes) -> bytes:
        return hmac.new(self._secret, _SHARED_DOMAIN + body, hashlib.sha256).digest()[:_TAG]

    def _digest(self, args: Mapping[str, Any]) -> bytes:
        bound = {k: v for k, v in args.items() if k != self.token_field}
        return hashlib.sha256(canonical_bytes(bound)).digest()

    def _prune(self, now_ms: int) -> int:
        # Insertion order is expiry order (constant TTL, monotonic clock), so stop at the first live one.
        removed = 0
        while self._entries:
            nonce, entry = next(iter(self._entries.items()))
            if entry.expires_ms > now_ms:
                break
            del self._entries[nonce]
            removed += 1
        return removed

    # -- API -------------------------------------------------------------------------------

    def issue(self, tool: str, args: Mapping[str, Any], caller: str | None) -> str:
        """Mint a token for exactly this tool, these arguments (minus the token field) and caller."""
        digest = self._digest(args)
        with self._lock:
            now = self._now_ms()
            self._prune(now)
            expires = now + self._ttl_ms
            nonce = secrets.token_bytes(_NONCE)
            exp = expires.to_bytes(_EXP, "big")
            self._entries[nonce] = _Entry(tool=tool, caller=caller, digest=digest, expires_ms=expires)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        if self._spender is not None:
            body = nonce + exp + b"".join(self._bind_tags(nonce, tool, caller, digest))
            raw = body + self._shared_tag(body)
        else:
            raw = nonce + exp + self._tag(nonce, exp)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def redeem(self, token: object, tool: str, args: Mapping[str, Any], caller: str | None) -> None:
        """Spend ``token`` for this call, or raise :class:`ConfirmationError` saying why not."""
        raw = self._decode(token, _SHARED_BYTES if self._spender is not None else _TOKEN_BYTES)
        if raw is None:
            raise ConfirmationError(ConfirmationFailure.UNKNOWN)
        nonce, exp = raw[:_NONCE], raw[_NONCE : _NONCE + _EXP]
        if self._spender is not None:
            if not hmac.compare_digest(raw[-_TAG:], self._shared_tag(raw[:-_TAG])):
                raise ConfirmationError(ConfirmationFailure.UNKNOWN)
        elif not hmac.compare_digest(raw[_NONCE + _EXP :], self._tag(nonce, exp)):
            raise ConfirmationError(ConfirmationFailure.UNKNOWN)
        digest = self._digest(args)
        with self._lock:
            now = self._now_ms()
            if now >= int.from_bytes(exp, "big"):
                raise ConfirmationError(ConfirmationFailure.EXPIRED)
            entry = self._entries.get(nonce)
            if entry is None and self._spender is not None:  # issued by another replica: the token says it all
                self._check_binding(raw, tool, caller, digest)
                return
            if entry is None:
                raise ConfirmationError(ConfirmationFailure.UNKNOWN)
            if entry.used:
                raise ConfirmationError(ConfirmationFailure.USED)
            if entry.tool != tool:
                raise ConfirmationError(ConfirmationFailure.OTHER_TOOL)
            if entry.caller != caller:
                raise ConfirmationError(ConfirmationFailure.OTHER_CALLER)
            if not hmac.compare_digest(entry.digest, digest):
                raise ConfirmationError(ConfirmationFailure.OTHER_ARGUMENTS)
            entry.used = True

    async def redeem_once(self, token: object, tool: str, args: Mapping[str, Any], caller: str | None) -> None:
        """:meth:`redeem`, then spend the token in the shared store (if any): once across all replicas."""
        self.redeem(token, tool, args, caller)
        if self._spender is None:
            return
        raw = self._decode(token, _SHARED_BYTES)
        assert raw is not None  # redeem accepted it
        expires_at = self._epoch + int.from_bytes(raw[_NONCE : _NONCE + _EXP], "big") / 1000
        if not await self._spender.spend(raw[:_NONCE], expires_at):
            raise ConfirmationError(ConfirmationFailure.USED)

    def _check_binding(self, raw: bytes, tool: str, caller: str | None, digest: bytes) -> None:
        nonce = raw[:_NONCE]
        tags = raw[_NONCE + _EXP : _NONCE + _EXP + 3 * _BIND]
        want_tool, want_caller, want_args = self._bind_tags(nonce, tool, caller, digest)
        if not hmac.compare_digest(tags[:_BIND], want_tool):
            raise ConfirmationError(ConfirmationFailure.OTHER_TOOL)
        if not hmac.compare_digest(tags[_BIND : 2 * _BIND], want_caller):
            raise ConfirmationError(ConfirmationFailure.OTHER_CALLER)
        if not hmac.compare_digest(tags[2 * _BIND :], want_args):
            raise ConfirmationError(ConfirmationFailure.OTHER_ARGUMENTS)

    def prune(self) -> int:
        """Drop expired entries now; returns how many. (``issue`` does this on its own.)"""
        with self._lock:
            return self._prune(self._now_ms())

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _decode(token: object, size: int = _TOKEN_BYTES) -> bytes | None:
        if not isinstance(token, str) or len(token) > 96:
            return None
        text = token.strip()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != size:
            return None
        # Reject non-canonical encodings (e.g. trailing bits set) so one token has one spelling.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
            return None
        return raw
