"""Transports: stdio (the default) and streamable HTTP, each with the App's lifespan around serving.

HTTP is where the door meets the network, so it is fail-closed: a bind address that is not
loopback refuses to start without a bearer token; DNS-rebinding protection (Host/Origin checks)
stays on for every bind; logs go to stderr only and never carry the token. The authenticated
caller's name reaches ``CallContext.caller`` (and so the audit ledger) through the SDK's auth
context, read by ``Door.caller``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server import Server
from mcp.server.stdio import stdio_server

from pvemcp.door._core import App
from pvemcp.door.auth import BearerTokens, is_loopback
from pvemcp.door.health import add_health_routes

if TYPE_CHECKING:  # the HTTP stack is imported only when serving HTTP: stdio starts without it
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
from pvemcp.door.server import build_server

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
ALLOWED_HOSTS_ENV = "PVEMCP_HTTP_ALLOWED_HOSTS"
_LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
_WILDCARDS = ("0.0.0.0", "::", "")
_LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class HttpConfigError(ValueError):
    """The HTTP transport must not start with this configuration; the message says why and how to fix it."""


async def serve_stdio(app: App) -> None:
    """Serve one client over stdin/stdout until it disconnects."""
    server = build_server(app, caller="stdio")
    async with app, stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def parse_hostport(value: str, *, default_port: int = 8765) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; ``:PORT`` and bare ``HOST`` allowed) → (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise HttpConfigError(f"--http {value!r}: missing ']' after the IPv6 address")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise HttpConfigError(f"--http {value!r}: write IPv6 addresses as [ADDR]:PORT")
    else:
        host, port_text = text, ""
    host = host or "127.0.0.1"
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise HttpConfigError(f"--http {value!r}: port must be a number") from None
    if not 0 <= port <= 65535:
        raise HttpConfigError(f"--http {value!r}: port out of range")
    return host, port


@dataclass(frozen=True)
class HttpSettings:
    """Everything the HTTP door needs besides the App."""

    host: str = "127.0.0.1"
    port: int = 8765
    tokens: BearerTokens | None = None
    extra_allowed_hosts: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.tokens is None and not is_loopback(self.host):
            raise HttpConfigError(
                f"refusing to serve HTTP on {self.host} without authentication: set PVEMCP_HTTP_TOKEN "
                "(or PVEMCP_HTTP_TOKEN_FILE), or bind 127.0.0.1"
            )

    @classmethod
    def from_env(
        cls, host: str, port: int, tokens: BearerTokens | None, env: Mapping[str, str] | None = None
    ) -> HttpSettings:
        env = os.environ if env is None else env
        extra = tuple(h.strip() for h in env.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip())
        return cls(host=host, port=port, tokens=tokens, extra_allowed_hosts=extra)

    def transport_security(self) -> TransportSecuritySettings:
        """Host/Origin allow-lists: loopback names always, the bind address, plus operator-named hosts.

        A wildcard bind (0.0.0.0, ::) cannot know the names clients will use, so those come from
        ``PVEMCP_HTTP_ALLOWED_HOSTS`` (comma-separated ``name`` or ``name:port``).
        """
        hosts = list(_LOOPBACK_HOSTS)
        origins = list(_LOOPBACK_ORIGINS)
        names = list(self.extra_allowed_hosts)
        if not is_loopback(self.host) and self.host not in _WILDCARDS:
            names.append(f"[{self.host}]" if ":" in self.host else self.host)
        for name in names:
            pattern = name if ":" in name.lstrip("[").split("]")[-1] else f"{name}:*"
            hosts.append(pattern)
            origins.extend([f"http://{pattern}", f"https://{pattern}"])
        from mcp.server.transport_security import TransportSecuritySettings

        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
        )


def build_http_app(server: Server[Any], settings: HttpSettings, *, stateless: bool = False) -> Starlette:
    """The Starlette app serving ``server`` at ``/mcp``, with bearer auth when tokens are configured."""
    from mcp.server.auth.settings import AuthSettings

    from pvemcp.door.auth import StaticTokenVerifier

    auth: AuthSettings | None = None
    verifier: StaticTokenVerifier | None = None
    if settings.tokens is not None:
        base = f"http://{_url_host(settings.host)}:{settings.port}"
        # Static bearer tokens, no OAuth discovery: no resource metadata URL, hence no resource check.
        auth = AuthSettings(issuer_url=base, resource_server_url=None)  # type: ignore[arg-type]
        verifier = StaticTokenVerifier(settings.tokens)
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=stateless,  # replicas: no session may live in one process
        host=settings.host,
        transport_security=settings.transport_security(),
        auth=auth,
        token_verifier=verifier,
    )


@dataclass
class RunningHttp:
    """A streamable HTTP endpoint being served; ``url`` is the MCP endpoint."""

    url: str
    host: str
    port: int
    _server: uvicorn.Server

    def stop(self) -> None:
        """Ask the server to shut down (the ``http_endpoint`` block then ends)."""
        self._server.should_exit = True

    async def wait_stopped(self) -> None:
        """Sleep until a signal (uvicorn handles SIGINT/SIGTERM) or ``stop()`` ends serving."""
        while not self._server.should_exit:
            await anyio.sleep(0.2)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class PortUnavailable(HttpConfigError):
    """The address cannot be bound (busy, privileged, not local); a start-up error for a person, not a bug."""


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or ``PortUnavailable`` saying what is wrong and what to do (no traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"{_url_host(host)}:{port}"
        reason = (exc.strerror or str(exc)).lower()
        raise PortUnavailable(f"cannot listen on {where}: {reason}.\n{_bind_hint(exc.errno, host, port)}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _bind_hint(errno_: int | None, host: str, port: int) -> str:
    """What to do about a failed bind, by its cause."""
    other = f"--http {_url_host(host)}:{port + 1 if 0 < port < 65535 else 8766}"
    if errno_ == errno.EADDRINUSE:
        return f"Stop the program using it (`ss -ltnp 'sport = :{port}'` shows it) or pick another port, e.g. {other}"
    if errno_ == errno.EACCES:
        return "Ports below 1024 need privileges: pick a port from 1024 up, e.g. --http 127.0.0.1:8765"
    if errno_ == errno.EADDRNOTAVAIL:
        return "That address is not one of this machine's: use 127.0.0.1, 0.0.0.0, or one `ip -brief addr` lists"
    return f"Pick another address or port, e.g. {other}"


def ensure_bindable(host: str, port: int) -> None:
    """Fail now, before anything else starts, if ``host:port`` cannot be listened on."""
    _bind(host, port).close()


@asynccontextmanager
async def http_endpoint(app: App, settings: HttpSettings) -> AsyncIterator[RunningHttp]:
    """Serve ``app`` over streamable HTTP for the duration of the block (port 0 = any free port).

    The App is entered here so its clients open before the first request and close after the last.
    """
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    bound = HttpSettings(
        host=settings.host, port=port, tokens=settings.tokens, extra_allowed_hosts=settings.extra_allowed_hosts
    )
    import uvicorn

    server = build_server(app, caller="http")
    starlette_app = build_http_app(server, bound, stateless=app.config.policy.state_url is not None)
    add_health_routes(starlette_app, app)
    config = uvicorn.Config(
        starlette_app,
        log_config=None,  # keep our stderr logging; uvicorn's default config writes access logs to stdout
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    uv_server = uvicorn.Server(config)
    url = f"http://{_url_host(settings.host)}:{port}{MCP_PATH}"
    running = RunningHttp(url=url, host=settings.host, port=port, _server=uv_server)
    if settings.host in _WILDCARDS and not settings.extra_allowed_hosts:
        logger.warning(
            "listening on all interfaces, but only loopback Host headers are accepted (DNS-rebinding "
            "protection): set %s to the name(s) clients use, e.g. mcp.example.lan",
            ALLOWED_HOSTS_ENV,
        )
    try:
        async with app, anyio.create_task_group() as tg:
            tg.start_soon(uv_server.serve, [sock])
            while not uv_server.started:
                if uv_server.should_exit:
                    raise RuntimeError("the HTTP server failed to start (see the log above)")
                await anyio.sleep(0.01)
            logger.info("pvemcp serving streamable HTTP at %s%s", running.url, " (bearer auth)" if bound.tokens else "")
            try:
                yield running
            finally:
                uv_server.should_exit = True
    finally:
        sock.close()


async def serve_http(app: App, settings: HttpSettings) -> None:
    """Serve until the process is interrupted (uvicorn turns SIGINT/SIGTERM into a clean shutdown)."""
    async with http_endpoint(app, settings) as running:
        await running.wait_stopped()
