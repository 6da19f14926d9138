"""Shared state for running several replicas: spent tokens, rate limits, the ledger, the shared key.

One process (the default) keeps this state in memory and in the ledger file — :mod:`.local`. Several
identical replicas behind a load balancer share it in PostgreSQL — :mod:`.postgres`, chosen by the
policy key ``state_url``. The rest of pvemcp sees only the small interface of :mod:`.store`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from pvemcp.core.state.secret import load_shared_secret, request_state_key
from pvemcp.core.state.store import LedgerWriter, RateLimiter, StateError, StateStore, TokenSpender

if TYPE_CHECKING:
    from pvemcp.core.policy.config import PolicyConfig

__all__ = [
    "LedgerWriter",
    "RateLimiter",
    "StateError",
    "StateStore",
    "TokenSpender",
    "check_state_config",
    "load_shared_secret",
    "open_state",
    "request_state_key",
]


def check_state_config(policy: PolicyConfig) -> None:
    """Before serving: with ``state_url``, the driver is installed and both shared keys load (no connection)."""
    if policy.state_url is None:
        return
    from pvemcp.core.state.postgres import _driver, shared_keys

    _driver()
    shared_keys(policy)


@asynccontextmanager
async def open_state(policy: PolicyConfig) -> AsyncIterator[StateStore]:
    """The state store the policy configures, open for the duration of the block."""
    if policy.state_url is None:
        from pvemcp.core.state.local import LocalState

        local = LocalState.from_policy(policy)
        try:
            yield local
        finally:
            local.close()
        return
    from pvemcp.core.state.postgres import PostgresState

    async with PostgresState.from_policy(policy) as shared:
        yield shared
