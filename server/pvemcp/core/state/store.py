"""The interface between pvemcp and wherever its safety state lives (this process, or a database).

Kept small on purpose: the ledger appends a record, a confirm token is spent once, a caller is
admitted or refused by the rate limit, and the store says whether it is reachable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["LedgerWriter", "RateLimiter", "StateError", "StateStore", "TokenSpender", "rate_message"]


class StateError(ValueError):
    """The shared state cannot be used; the message says what to fix."""


class LedgerWriter(Protocol):
    """Appends one audit record to a chain (the file ledger, or the shared one)."""

    async def append_async(self, outcome: Any, **fields: Any) -> dict[str, Any]: ...


class TokenSpender(Protocol):
    """Spends a confirm token's id once, whichever replica redeems it."""

    async def spend(self, token_id: bytes, expires_at: float) -> bool:
        """True the first time ``token_id`` is spent; False ever after (until ``expires_at`` passes)."""
        ...


class StateStore(Protocol):
    """Everything the App needs from the state backend."""

    @property
    def shared(self) -> bool:
        """True when several replicas share this state (confirm tokens must then verify on any of them)."""
        ...

    @property
    def ledger(self) -> LedgerWriter | None:
        """Where audit records go; ``None`` when auditing is off."""
        ...

    @property
    def spender(self) -> TokenSpender | None:
        """``None`` in a single process, where the confirmation store itself remembers spent tokens."""
        ...

    def confirm_secret(self) -> bytes | None:
        """The confirm-token key every replica shares; ``None`` = the confirmation store's own random key."""
        ...

    async def admit(self, caller: str | None) -> str | None:
        """``None`` if ``caller`` may make one more call now, else the refusal to show."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StateError` if the store cannot be reached."""
        ...


def rate_message(limit: int, retry_in_s: float) -> str:
    """The refusal a rate-limited caller sees: what happened and when to retry. Nothing was sent."""
    return (
        f"rate limit reached: at most {limit} tool calls per minute for this caller; "
        f"retry in {max(1, round(retry_in_s))}s. Nothing was sent."
    )


class RateLimiter:
    """A fixed-window counter per caller, in memory (one process); the database does the same across replicas."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def admit(self, caller: str | None) -> str | None:
        now = self._clock()
        window = int(now // self.window_s)
        name = caller or ""
        with self._lock:
            if len(self._counts) > 10_000:  # forget callers of past windows: memory stays bounded
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            start, count = self._counts.get(name, (window, 0))
            if start != window:
                count = 0
            if count >= self.limit:
                return rate_message(self.limit, (window + 1) * self.window_s - now)
            self._counts[name] = (window, count + 1)
        return None
