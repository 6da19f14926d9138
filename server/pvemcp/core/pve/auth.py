"""Authentication: API tokens, and password login with single-flight ticket renewal.

API token (recommended): a static header, no CSRF, nothing to renew.

Ticket: ``POST /access/ticket`` with user + password yields a ticket (cookie ``PVEAuthCookie``, valid 2 h)
and a ``CSRFPreventionToken`` header required on every non-GET request.  We renew it *before* it expires
(after ``ticket_renew_after_s``, by posting the current ticket as the password — PVE's own renewal path)
and once after a 401 (by a fresh password login: a rejected ticket cannot renew itself).

Single-flight: when a ticket goes stale, every in-flight call notices at once.  Each call remembers the
*generation* of the credentials it used; renewals happen under one lock and only if the generation is
still the one the caller saw — so fifty concurrent calls that hit an expired ticket cause exactly one
``POST /access/ticket``, and the other forty-nine simply use its result.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio

from pvemcp.core.pve.errors import PveError

logger = logging.getLogger("pvemcp.pve.auth")

# Ticket and CSRF token come from the server and go into headers: refuse anything that could break
# out of a header value (defence against a hostile endpoint).
_HEADER_VALUE_RE = re.compile(r"^[\x21-\x7e]+$")

LoginFn = Callable[[Mapping[str, str]], Awaitable[Any]]


class Authenticator(Protocol):
    """What the client needs from an auth scheme."""

    kind: str  # "token" | "ticket"
    identity: str

    async def headers(self, method: str) -> tuple[dict[str, str], int]:
        """Headers for one request, and the credential generation they belong to."""
        ...

    async def on_unauthorized(self, generation: int) -> bool:
        """React to a 401 for a request sent with ``generation``; True if a retry may succeed."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Current secret values (for scrubbing error texts)."""
        ...


class TokenAuth:
    """``Authorization: PVEAPIToken=USER@REALM!ID=SECRET`` on every request; nothing to renew."""

    kind = "token"

    def __init__(self, token_id: str, secret: str) -> None:
        self.identity = token_id
        self._header = {"Authorization": f"PVEAPIToken={token_id}={secret}"}
        self._secret = secret

    async def headers(self, method: str) -> tuple[dict[str, str], int]:
        return dict(self._header), 0

    async def on_unauthorized(self, generation: int) -> bool:
        # A token does not expire mid-session in a way a retry could fix.
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self._secret,)

    def __repr__(self) -> str:
        return f"TokenAuth(identity={self.identity!r}, secret='***')"


class TicketAuth:
    """Password login → ticket + CSRF token, renewed single-flight (see module docstring).

    ``login`` performs ``POST /access/ticket`` with the given form and returns the envelope ``data``;
    the client supplies it so this module owns no HTTP.
    """

    kind = "ticket"

    def __init__(
        self,
        user: str,
        password: str,
        login: LoginFn,
        *,
        renew_after_s: float = 3600.0,
        lifetime_s: float = 7200.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = user
        self._password = password
        self._login = login
        self._renew_after = renew_after_s
        # Renewing with the ticket only works while the server still accepts it; keep a margin
        # for clock skew between us and the server (PVE allows 5 min of grace itself).
        self._renew_deadline = lifetime_s - 300.0
        self._clock = clock
        self._lock = anyio.Lock()
        self._ticket: str | None = None
        self._csrf: str | None = None
        self._issued_at = 0.0
        self._generation = 0
        self.renewals = 0  # number of successful POST /access/ticket calls (logins + renewals)

    async def headers(self, method: str) -> tuple[dict[str, str], int]:
        generation = self._generation
        if self._ticket is None or self._clock() - self._issued_at >= self._renew_after:
            await self._refresh(generation, force_password=False)
        ticket, csrf, generation = self._ticket, self._csrf, self._generation
        assert ticket is not None and csrf is not None
        headers = {"Cookie": f"PVEAuthCookie={ticket}"}
        if method != "GET":
            headers["CSRFPreventionToken"] = csrf
        return headers, generation

    async def on_unauthorized(self, generation: int) -> bool:
        await self._refresh(generation, force_password=True)
        return True

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._password, self._ticket, self._csrf) if s)

    async def _refresh(self, seen_generation: int, *, force_password: bool) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # somebody renewed while we waited for the lock: use theirs
            age = self._clock() - self._issued_at
            use_ticket = not force_password and self._ticket is not None and age < self._renew_deadline
            data: Any = None
            if use_ticket:
                assert self._ticket is not None
                try:
                    data = await self._login({"username": self.identity, "password": self._ticket})
                except PveError as exc:
                    if exc.status != 401:
                        raise
                    logger.info("ticket renewal for %s was refused; logging in with the password", self.identity)
                    data = None
            if data is None:
                data = await self._login({"username": self.identity, "password": self._password})
            self._accept(data)

    def _accept(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise PveError(
                kind="server",
                message="unexpected answer to POST /access/ticket (no ticket)",
                method="POST",
                path="/access/ticket",
                hint="is the url really a Proxmox VE API endpoint?",
            )
        if data.get("NeedTFA"):
            raise PveError(
                kind="auth",
                message=f"the account {self.identity!r} requires two-factor authentication",
                hint="TFA accounts are not supported; create an API token for it and use token_id + token_secret.",
                method="POST",
                path="/access/ticket",
            )
        ticket = data.get("ticket")
        csrf = data.get("CSRFPreventionToken")
        if not (
            isinstance(ticket, str)
            and isinstance(csrf, str)
            and _HEADER_VALUE_RE.match(ticket)
            and ";" not in ticket
            and "," not in ticket
            and _HEADER_VALUE_RE.match(csrf)
        ):
            raise PveError(
                kind="server",
                message="POST /access/ticket returned no usable ticket/CSRF token",
                method="POST",
                path="/access/ticket",
                hint="is the url really a Proxmox VE API endpoint?",
            )
        self._ticket = ticket
        self._csrf = csrf
        self._issued_at = self._clock()
        self._generation += 1
        self.renewals += 1
        logger.debug("obtained a ticket for %s (generation %d)", self.identity, self._generation)

    def __repr__(self) -> str:
        return f"TicketAuth(identity={self.identity!r}, password='***', generation={self._generation})"
