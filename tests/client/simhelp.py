"""Shared helpers for the simulator tests: configs pointing at a running simulator, request-log queries."""

from __future__ import annotations

from typing import Any

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.resolve import GuestRef


def token_config(sim: Any, **kw: Any) -> ClientConfig:
    """Administrator API token, certificate pinned by fingerprint."""
    kw.setdefault("fingerprint", sim.fingerprint)
    kw.setdefault("retry_backoff_s", 0.01)
    return ClientConfig(url=sim.url, token_id=sim.token_id, token_secret=sim.token_secret, **kw)


def ticket_config(sim: Any, **kw: Any) -> ClientConfig:
    """Administrator user + password (ticket login), certificate pinned by fingerprint."""
    kw.setdefault("fingerprint", sim.fingerprint)
    kw.setdefault("retry_backoff_s", 0.01)
    return ClientConfig(url=sim.url, user=sim.user, password=sim.password, **kw)


def count(sim: Any, method: str, path: str, since: int = 0) -> int:
    """How many requests with this method and exact path the simulator served after index ``since``."""
    return sum(1 for r in sim.request_log[since:] if r.method == method and r.path == path)


async def pick_guest(pve: PveClient, *, type: str, status: str, template: bool = False) -> GuestRef:
    """A guest of the seeded cluster in the wanted state (found through the API, not the model)."""
    for guest in await pve.list_guests():
        if guest.type == type and guest.status == status and guest.template == template and not guest.lock:
            return guest
    raise AssertionError(f"the seeded cluster has no {status} {type} (template={template})")
