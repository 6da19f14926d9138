"""State of a single process: the ledger file, in-memory rate limits; the confirmation store spends tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvemcp.core.policy.ledger import AuditLedger
from pvemcp.core.state.store import RateLimiter, TokenSpender

if TYPE_CHECKING:
    from pvemcp.core.policy.config import PolicyConfig

__all__ = ["LocalState"]


class LocalState:
    """The default: nothing shared, nothing to install (see :mod:`pvemcp.core.state`)."""

    shared = False
    spender: TokenSpender | None = None

    def __init__(self, ledger: AuditLedger | None, limiter: RateLimiter | None) -> None:
        self.ledger = ledger
        self._ledger_file = ledger
        self._limiter = limiter

    @classmethod
    def from_policy(cls, policy: PolicyConfig) -> LocalState:
        limit = policy.rate_limit_per_minute
        return cls(AuditLedger.from_config(policy), RateLimiter(limit) if limit else None)

    async def admit(self, caller: str | None) -> str | None:
        return self._limiter.admit(caller) if self._limiter is not None else None

    def confirm_secret(self) -> bytes | None:
        return None

    async def ping(self) -> None:
        """A process's own memory and files are always reachable."""

    def close(self) -> None:
        if self._ledger_file is not None:
            self._ledger_file.close()
