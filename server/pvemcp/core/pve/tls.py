"""TLS for the Proxmox client: trust-store verification, certificate pinning, and the transport.

Why a custom transport: PVE ships a self-signed certificate, and the safe way to trust it is to pin its
SHA-256 fingerprint (what the GUI shows).  The pin must be checked *after the TLS handshake and before
the first request byte* — otherwise the ``Authorization`` header with the API token secret would already
be on its way to an impostor.  httpx2 has no hook at that point, but its connection layer (httpcore2)
takes a pluggable *network backend*: every new connection calls ``connect_tcp`` and then
``stream.start_tls``, and only afterwards writes the request.  :class:`PinningBackend` wraps the real
backend and checks the peer certificate inside ``start_tls``; on mismatch it closes the socket and raises
:class:`PinMismatch`, so the HTTP layer never gets a stream to write to.  Guarantee: with a pin set, no
byte of any HTTP request (and thus no secret) is ever written to a connection whose certificate does not
match the pin — including reused keep-alive connections, since every connection passes ``start_tls``
exactly once, at creation.

:class:`PveTransport` is a small ``httpx2.AsyncBaseTransport`` over an ``httpcore2.AsyncConnectionPool``
built with that backend; it maps httpcore2 errors to httpx2 errors as httpx2's own transport does.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpcore2
import httpx2

from pvemcp.core.pve.fingerprint import fingerprint_of, normalize_fingerprint


class PinMismatch(Exception):
    """The server's certificate does not match the pinned fingerprint; nothing was sent."""

    def __init__(self, host: str, port: int, expected: str, actual: str | None) -> None:
        self.host = host
        self.port = port
        self.expected = expected
        self.actual = actual
        shown = actual or "no certificate"
        super().__init__(
            f"certificate fingerprint mismatch for {host}:{port}: pinned {expected}, server presented {shown}"
        )


def build_ssl_context(*, fingerprint: str | None, ca_file: str | Path | None, insecure: bool) -> ssl.SSLContext:
    """The client SSL context for one configuration.

    * pin set: no CA/hostname verification — the pin (checked by :class:`PinningBackend`) is the
      trust decision, and it is stricter than a CA (it names one exact certificate).
    * ``insecure``: no verification at all (explicit opt-in, warned about by the client).
    * otherwise: the system trust store (``ssl.create_default_context``), plus ``ca_file`` if given,
      with hostname checking.
    """
    if fingerprint is not None or insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context()
        if ca_file is not None:
            ctx.load_verify_locations(cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class _PinningStream(httpcore2.AsyncNetworkStream):
    """A TCP stream whose ``start_tls`` refuses a peer certificate that does not match the pin."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream, host: str, port: int, pin: str) -> None:
        self._inner = inner
        self._host = host
        self._port = port
        self._pin = pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # Only reached for plain TCP before TLS, which never happens for https: httpcore2 calls
        # start_tls first.  Refuse anyway, so a code path we did not foresee cannot leak bytes.
        raise PinMismatch(self._host, self._port, self._pin, None)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        tls_stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = tls_stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = fingerprint_of(der) if der else None
        if actual != self._pin:
            await tls_stream.aclose()
            raise PinMismatch(self._host, self._port, self._pin, actual)
        return tls_stream

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinningBackend(httpcore2.AsyncNetworkBackend):
    """Network backend that pins the TLS certificate of every new connection (see module docstring)."""

    def __init__(self, pin: str, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self._pin = normalize_fingerprint(pin)
        self._inner = inner if inner is not None else httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _PinningStream(stream, host, port, self._pin)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise PinMismatch(path, 0, self._pin, None)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore2 -> httpx2 exception mapping, most specific first (mirrors httpx2's own transport).
_EXC_MAP: tuple[tuple[type[Exception], type[httpx2.HTTPError]], ...] = (
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.ProxyError, httpx2.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
)


def _map_exception(exc: Exception) -> Exception:
    for source, target in _EXC_MAP:
        if isinstance(exc, source):
            mapped = target(str(exc))
            mapped.__cause__ = exc
            return mapped
    return exc


class _ResponseStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._inner:
                yield part
        except Exception as exc:
            raise _map_exception(exc) from exc

    async def aclose(self) -> None:
        if hasattr(self._inner, "aclose"):
            await self._inner.aclose()


class PveTransport(httpx2.AsyncBaseTransport):
    """httpx2 transport over an httpcore2 pool with our SSL context and (optional) pinning backend."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        pin: str | None,
        max_connections: int,
        keepalive_expiry: float = 20.0,
        network_backend: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        backend = network_backend
        if pin is not None:
            backend = PinningBackend(pin, inner=network_backend)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,  # retries are the client's decision, made with knowledge of the method
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except Exception as exc:
            raise _map_exception(exc) from exc
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
