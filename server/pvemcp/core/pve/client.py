"""``PveClient``: the one async client every Proxmox request of pvemcp goes through.

One instance per cluster, one pooled ``httpx2.AsyncClient`` inside.  What it guarantees:

* **Only known operations**: a request names a spec path *template* (``/nodes/{node}/qemu/{vmid}``) and
  its parameters separately; the template must exist in the API spec for that method, and parameters are
  validated and percent-encoded into single segments (``paths.py``).  Untrusted text cannot steer a call
  to another endpoint.
* **Errors**: every failure is a :class:`~pvemcp.core.pve.errors.PveError` with Proxmox's own words and a
  hint; secrets are scrubbed from all texts.
* **Retries only where safe**: GET is retried on connection failures, resets and transient 5xx; any method
  is retried when the connection failed *provably before a request byte was written* (tracked through
  httpcore2's ``trace`` extension).  A POST/PUT/DELETE that may have reached the server is never resent.
  Backoff is exponential with full jitter, bounded by ``retries`` attempts.
* **Timeouts per request class**: ``read_timeout_s`` for GET, ``mutate_timeout_s`` for the rest.
* **Bounded concurrency**: at most ``max_concurrency`` requests in flight per cluster, so a batch of
  fifty tool calls cannot overwhelm a node.
* **Auth**: API token or ticket (``auth.py``), 401 → one single-flight renewal and one resend (a 401 is
  raised before any handler runs, so resending is safe even for POST).
"""

from __future__ import annotations

import json
import logging
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlencode

import anyio
import httpx2

from pvemcp.core.pve.auth import Authenticator, TicketAuth, TokenAuth
from pvemcp.core.pve.config import ClientConfig, ConfigError
from pvemcp.core.pve.errors import PveError, error_from_response, scrub
from pvemcp.core.pve.paths import build_path, encode_params
from pvemcp.core.pve.tls import PinMismatch, PveTransport, build_ssl_context

if TYPE_CHECKING:
    from pvemcp.core.pve.resolve import GuestRef, GuestResolver
    from pvemcp.core.pve.tasks import TaskResult
    from pvemcp.dialect.types import ProgressFn
    from pvemcp.dialect.upid import Upid

__all__ = ["ClientConfig", "ConfigError", "Envelope", "KnownOperation", "PveClient", "PveError"]

logger = logging.getLogger("pvemcp.pve")

KnownOperation = Callable[[str, str], bool]
ObjectHook = Callable[[dict[str, Any]], Any]
"""Builds each JSON object of an answer (``json.loads``'s ``object_hook``)."""
METHODS = ("GET", "POST", "PUT", "DELETE")
LOGIN_PATH = "/access/ticket"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A successful ``/api2/json`` answer: ``data`` plus the optional ``total`` and ``changes``."""

    data: Any
    total: int | None = None
    changes: Any = None


def spec_known_operation() -> KnownOperation:
    """The production check: is ``METHOD template`` an operation of the bundled API spec?

    Raises whatever importing/loading the spec raises; the client turns that into a fail-closed refusal.
    """
    from pvemcp.dialect.model import load_spec

    spec = load_spec()

    def known(method: str, template: str) -> bool:
        try:
            spec.operation(f"{method} {template}")
        except KeyError:
            return False
        return True

    return known


class _SendTrace:
    """Records whether httpcore2 started writing the request (for "provably sent nothing")."""

    __slots__ = ("started_sending",)

    def __init__(self) -> None:
        self.started_sending = False

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if "send_request" in event:
            self.started_sending = True


class PveClient:
    """Async Proxmox VE API client; use as ``async with PveClient(config) as pve: ...``.

    Args:
        config: the validated :class:`ClientConfig`.
        known_operation: ``(method, template) -> bool``; defaults to the bundled API spec.  Tests may
            inject their own.  If the spec cannot be loaded, every request is refused (fail closed).
        transport: an ``httpx2`` transport to use instead of the pinned HTTPS one (unit tests).
        clock: monotonic clock (ticket age, caches, task deadlines).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        known_operation: KnownOperation | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._clock = clock
        self._transport_override = transport
        self._spec_problem: str | None = None
        if known_operation is None:
            try:
                known_operation = spec_known_operation()
            except Exception as exc:  # ImportError until the spec lands, or a broken openapi.json
                self._spec_problem = f"{type(exc).__name__}: {exc}"
                known_operation = None
        self._known = known_operation
        self._http: httpx2.AsyncClient | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._auth: Authenticator | None = None
        self._mutation_epoch = 0
        self._resolver: GuestResolver | None = None
        self._random = random.Random()

    # -- lifecycle ------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._http is not None:
            raise RuntimeError("this PveClient is already open; use one 'async with' per client")
        cfg = self._config
        if cfg.insecure:
            logger.warning(
                "TLS verification is DISABLED for %s (insecure=true): anyone on the network path can read "
                "the credentials; pin the certificate with fingerprint=... instead",
                cfg.host_port,
            )
        transport = self._transport_override
        if transport is None:
            transport = PveTransport(
                ssl_context=build_ssl_context(fingerprint=cfg.fingerprint, ca_file=cfg.ca_file, insecure=cfg.insecure),
                pin=cfg.fingerprint,
                max_connections=cfg.max_concurrency + 2,  # +login, +slack for closing connections
            )
        self._http = httpx2.AsyncClient(
            base_url=cfg.url,
            transport=transport,
            trust_env=False,  # no proxies, no .netrc: the credentials go to the configured host only
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "pvemcp"},
        )
        self._limiter = anyio.CapacityLimiter(cfg.max_concurrency)
        if cfg.token_id is not None:
            assert cfg.token_secret is not None
            self._auth = TokenAuth(cfg.token_id, cfg.token_secret)
        else:
            assert cfg.user is not None and cfg.password is not None
            self._auth = TicketAuth(
                cfg.user,
                cfg.password,
                self._login,
                renew_after_s=cfg.ticket_renew_after_s,
                lifetime_s=cfg.ticket_lifetime_s,
                clock=self._clock,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    # -- public API -----------------------------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def identity(self) -> str:
        """Token id or user we authenticate as (never a secret)."""
        return self._config.identity

    @property
    def mutation_epoch(self) -> int:
        """Incremented by every successful POST/PUT/DELETE; caches of cluster state compare it."""
        return self._mutation_epoch

    @property
    def ticket_renewals(self) -> int:
        """Successful ``POST /access/ticket`` calls so far (0 with an API token)."""
        return self._auth.renewals if isinstance(self._auth, TicketAuth) else 0

    async def get(
        self,
        template: str,
        *,
        path: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
        object_hook: ObjectHook | None = None,
    ) -> Any:
        """``GET`` and return the envelope's ``data``.

        ``object_hook``: how the answer's JSON objects are built (``json.loads``'s hook), e.g.
        :func:`~pvemcp.dialect.compact.compact_object_hook` for a large answer kept in memory.
        """
        return (await self.request("GET", template, path=path, params=params, object_hook=object_hook)).data

    async def post(
        self, template: str, *, path: Mapping[str, object] | None = None, data: Mapping[str, object] | None = None
    ) -> Any:
        """``POST`` (form-encoded) and return ``data`` — a UPID string for task-starting calls."""
        return (await self.request("POST", template, path=path, data=data)).data

    async def request(
        self,
        method: str,
        template: str,
        *,
        path: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        object_hook: ObjectHook | None = None,
    ) -> Envelope:
        """Send one API call and return the whole :class:`Envelope` (``data`` and ``total``).

        ``params`` go to the query string, ``data`` to the form body (POST/PUT only); ``object_hook`` as
        in :meth:`get`.
        """
        method = method.upper()
        if method not in METHODS:
            raise self._refused(method, template, f"method {method!r} is not used by the Proxmox API")
        if self._known is None:
            raise self._refused(
                method,
                template,
                f"the API spec is unavailable ({self._spec_problem}); refusing to send unchecked paths",
            )
        if not self._known(method, template):
            raise self._refused(method, template, f"unknown API operation '{method} {template}'")
        if data and method in ("GET", "DELETE"):
            raise self._refused(method, template, f"{method} takes no body; pass params instead")
        concrete = build_path(method, template, path)
        query = encode_params(params, method=method, path=concrete)
        body = encode_params(data, method=method, path=concrete) if method in ("POST", "PUT") else None
        node = path.get("node") if path else None
        return await self._send(
            method,
            concrete,
            query,
            body,
            node=str(node) if node is not None else None,
            authenticate=True,
            object_hook=object_hook,
        )

    async def wait_task(
        self,
        upid: str | Upid,
        deadline_s: float = 600.0,
        on_progress: ProgressFn | None = None,
    ) -> TaskResult:
        """Poll a task until it stops or ``deadline_s`` passes; see :func:`pvemcp.core.pve.tasks.wait_task`."""
        from pvemcp.core.pve.tasks import wait_task

        return await wait_task(self, upid, deadline_s=deadline_s, on_progress=on_progress, clock=self._clock)

    async def resolve_guest(self, vmid: int | str) -> GuestRef:
        """vmid → :class:`~pvemcp.core.pve.resolve.GuestRef` (node, type, name, status, ...), cached briefly."""
        return await self._guest_resolver().resolve(vmid)

    async def list_guests(self) -> list[GuestRef]:
        """All guests visible to our credentials, from the same short-lived cache as :meth:`resolve_guest`."""
        return await self._guest_resolver().list()

    async def guest_entries(self) -> list[Mapping[str, Any]]:
        """The raw ``/cluster/resources`` guest entries, sorted by vmid, from the same index (read-only)."""
        return await self._guest_resolver().entries()

    def _guest_resolver(self) -> GuestResolver:
        if self._resolver is None:
            from pvemcp.core.pve.resolve import GuestResolver as _GuestResolver

            self._resolver = _GuestResolver(self, clock=self._clock)
        return self._resolver

    # -- internals ------------------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        extra = self._auth.secrets() if self._auth is not None else ()
        return self._config.secrets() + extra

    def _refused(self, method: str, template: str, message: str) -> PveError:
        return PveError(
            kind="refused",
            message=message,
            hint="nothing was sent to Proxmox.",
            method=method,
            path=template,
            secrets=self._secrets(),
        )

    async def _login(self, form: Mapping[str, str]) -> Any:
        """``POST /access/ticket`` without credentials headers (used by :class:`TicketAuth`)."""
        if self._known is not None and not self._known("POST", LOGIN_PATH):
            raise self._refused("POST", LOGIN_PATH, "the API spec has no POST /access/ticket")
        envelope = await self._send("POST", LOGIN_PATH, [], list(form.items()), node=None, authenticate=False)
        return envelope.data

    def _timeout(self, method: str) -> httpx2.Timeout:
        cfg = self._config
        budget = cfg.read_timeout_s if method == "GET" else cfg.mutate_timeout_s
        return httpx2.Timeout(budget, connect=cfg.connect_timeout_s, pool=cfg.connect_timeout_s)

    async def _backoff(self, attempt: int) -> None:
        cfg = self._config
        ceiling = min(cfg.retry_backoff_max_s, cfg.retry_backoff_s * (2 ** (attempt - 1)))
        await anyio.sleep(self._random.uniform(0, ceiling) if ceiling > 0 else 0)

    async def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: list[tuple[str, str]] | None,
        *,
        node: str | None,
        authenticate: bool,
        object_hook: ObjectHook | None = None,
    ) -> Envelope:
        http, limiter, auth = self._http, self._limiter, self._auth
        if http is None or limiter is None or auth is None:
            raise self._refused(method, path, "the client is not open (use 'async with PveClient(...)')")
        cfg = self._config
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            generation = 0
            if authenticate:
                headers, generation = await auth.headers(method)
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            trace = _SendTrace()
            started = time.monotonic()
            # The login bypasses the limiter: requests queued behind a stale ticket must not delay the
            # one request that will fix it (the pool has room for it: max_concurrency + 2 connections).
            slot: AbstractAsyncContextManager[Any] = limiter if authenticate else _no_limit()
            try:
                async with slot:
                    response = await http.request(
                        method,
                        path.lstrip("/") + (f"?{urlencode(query, quote_via=quote)}" if query else ""),
                        content=urlencode(body, quote_via=quote).encode() if body is not None else None,
                        headers=headers,
                        timeout=self._timeout(method),
                        extensions={"trace": trace},
                    )
            except httpx2.InvalidURL as exc:  # built locally, never sent: a value too long for a URL
                raise PveError(
                    kind="params",
                    message=f"the request cannot be sent: {str(exc)[:120]}",
                    hint="nothing was sent; a parameter value is far too long",
                    method=method,
                    path=path,
                    host=cfg.host_port,
                    secrets=self._secrets(),
                ) from None
            except PinMismatch as exc:
                raise PveError(
                    kind="tls",
                    message=str(exc),
                    hint=(
                        "nothing was sent. If the certificate was legitimately renewed, verify the new "
                        "fingerprint (GUI: node → System → Certificates) and update the pin."
                    ),
                    method=method,
                    path=path,
                    host=cfg.host_port,
                    secrets=self._secrets(),
                ) from None
            except httpx2.TransportError as exc:
                nothing_sent = not trace.started_sending and isinstance(
                    exc, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
                )
                error = self._transport_error(exc, method, path, nothing_sent)
                retryable = error.kind != "tls" and (
                    nothing_sent or (method == "GET" and not isinstance(exc, httpx2.ReadTimeout))
                )
                if retryable and attempt < cfg.retries:
                    logger.info("%s %s failed (%s); retrying (attempt %d)", method, path, error.kind, attempt + 1)
                    await self._backoff(attempt)
                    continue
                if not nothing_sent:
                    self._note_possible_mutation(method, authenticate)
                raise error from None

            status = response.status_code
            logger.debug("%s %s -> %d (%.0f ms)", method, path, status, (time.monotonic() - started) * 1000)
            if status == 401 and authenticate and not reauthenticated:
                reauthenticated = True
                if await auth.on_unauthorized(generation):
                    attempt -= 1  # a 401 is answered before any handler runs: resending is safe
                    continue
            if status != 200:
                if method == "GET" and status in cfg.retry_statuses and attempt < cfg.retries:
                    logger.info("%s %s -> %d; retrying (attempt %d)", method, path, status, attempt + 1)
                    await self._backoff(attempt)
                    continue
                if status >= 500:  # a 4xx is refused before any change; a 5xx may be half-done
                    self._note_possible_mutation(method, authenticate)
                raise self._http_error(response, method, path, node, authenticate)

            self._note_possible_mutation(method, authenticate)
            return self._parse_envelope(response, method, path, object_hook)

    def _note_possible_mutation(self, method: str, authenticate: bool) -> None:
        """Move ``mutation_epoch`` after any write that succeeded or may have been applied.

        Caches of cluster state (guest resolution) compare the epoch, so our own changes — and our own
        maybe-changes after a timeout or reset — are never hidden behind a stale cache.
        """
        if method != "GET" and authenticate:
            self._mutation_epoch += 1

    def _parse_envelope(
        self, response: httpx2.Response, method: str, path: str, object_hook: ObjectHook | None = None
    ) -> Envelope:
        try:
            payload = json.loads(response.content, object_hook=object_hook)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, Mapping) or "data" not in payload:
            raise PveError(
                kind="server",
                status=response.status_code,
                message="the answer is not a Proxmox API envelope",
                hint="is the url a Proxmox VE API endpoint (https://host:8006)?",
                method=method,
                path=path,
                secrets=self._secrets(),
            )
        total = payload.get("total")
        return Envelope(
            data=payload["data"],
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            changes=payload.get("changes"),
        )

    def _http_error(
        self, response: httpx2.Response, method: str, path: str, node: str | None, authenticate: bool
    ) -> PveError:
        raw_reason = response.extensions.get("reason_phrase", b"")
        reason = raw_reason.decode("utf-8", "replace") if isinstance(raw_reason, bytes) else str(raw_reason)
        body_message: str | None = None
        body_errors: dict[str, str] | None = None
        try:
            payload = json.loads(response.content) if response.content else None
        except (ValueError, UnicodeDecodeError):
            payload = None
        if isinstance(payload, dict):
            if isinstance(payload.get("message"), str):
                body_message = payload["message"]
            errs = payload.get("errors")
            if isinstance(errs, dict):
                body_errors = {str(k): str(v) for k, v in errs.items()}
        identity_kind: Any = self._auth.kind if (self._auth is not None and authenticate) else "ticket"
        return error_from_response(
            status=response.status_code,
            reason=reason,
            body_message=body_message,
            body_errors=body_errors,
            method=method,
            path=path,
            identity=self.identity,
            identity_kind=identity_kind,
            node=node,
            secrets=self._secrets(),
        )

    def _transport_error(self, exc: httpx2.TransportError, method: str, path: str, nothing_sent: bool) -> PveError:
        cfg = self._config
        host = cfg.host_port
        chain = _exception_chain(exc)
        mutating = method != "GET"
        maybe_applied = (
            " The request may have reached Proxmox: check the guest's state and recent tasks before retrying."
            if mutating and not nothing_sent
            else ""
        )
        common: dict[str, Any] = {"method": method, "path": path, "host": host, "secrets": self._secrets()}

        # TLS failures only count during connection setup; a read timeout on an established TLS stream
        # carries an SSLWantReadError in its context that says nothing about the certificate.
        setup = isinstance(exc, httpx2.ConnectError)
        cert_error = next((e for e in chain if setup and isinstance(e, ssl.SSLCertVerificationError)), None)
        if cert_error is not None:
            detail = getattr(cert_error, "verify_message", None) or str(cert_error)
            return PveError(
                kind="tls",
                message=f"the TLS certificate of {host} could not be verified ({detail})",
                hint=(
                    "for PVE's self-signed certificate set fingerprint=<SHA-256 shown in the GUI under "
                    "node → System → Certificates>, or ca_file=<your CA>; nothing was sent."
                ),
                **common,
            )
        ssl_error = next(
            (
                e
                for e in chain
                if setup
                and isinstance(e, ssl.SSLError)
                and not isinstance(e, (ssl.SSLWantReadError, ssl.SSLWantWriteError))
            ),
            None,
        )
        if ssl_error is not None:
            return PveError(
                kind="tls",
                message=f"TLS handshake with {host} failed ({ssl_error.reason or ssl_error})",
                hint="check that the url points to pveproxy (https, port 8006); nothing was sent.",
                **common,
            )
        if isinstance(exc, httpx2.TimeoutException):
            if isinstance(exc, (httpx2.ConnectTimeout, httpx2.PoolTimeout)):
                return PveError(
                    kind="timeout",
                    message=f"could not connect to {host} within {cfg.connect_timeout_s:g} s",
                    hint="the host is down or a firewall drops the traffic; nothing was sent.",
                    **common,
                )
            budget = cfg.read_timeout_s if method == "GET" else cfg.mutate_timeout_s
            return PveError(
                kind="timeout",
                message=f"no answer from {host} within {budget:g} s",
                hint=("the node may be overloaded or hanging; retry later or raise the timeout." + maybe_applied),
                **common,
            )
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return PveError(
                kind="connection",
                message=f"connection refused by {host}",
                hint="is pveproxy running and is the port right (8006)? Nothing was sent.",
                **common,
            )
        if any(isinstance(e, socket.gaierror) for e in chain):
            return PveError(
                kind="connection",
                message=f"cannot resolve the host of {host}",
                hint="check the host name in the url; nothing was sent.",
                **common,
            )
        if isinstance(exc, httpx2.ConnectError):
            return PveError(
                kind="connection",
                message=f"cannot connect to {host} ({scrub(str(exc), self._secrets()) or 'connection failed'})",
                hint="check the url and the network path to the node; nothing was sent.",
                **common,
            )
        detail = str(exc) or type(exc).__name__
        return PveError(
            kind="connection",
            message=f"the connection to {host} broke during the request ({detail})",
            hint=("retry later." if not mutating else "") + maybe_applied,
            **common,
        )


@asynccontextmanager
async def _no_limit() -> AsyncIterator[None]:
    yield


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
