"""Pinning at the byte level: a loopback TLS server that counts every application byte it receives.

The simulator tests show no *request* reached it on a pin mismatch; this test shows something stronger —
not a single byte of HTTP (so not the Authorization header) was written to the TLS connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpcore2
import pytest
from anyio.streams.tls import TLSListener

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError
from pvemcp.core.pve.fingerprint import fingerprint_of, normalize_fingerprint
from pvemcp.core.pve.tls import PveTransport, build_ssl_context

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

SECRET = "5f0e1d2c-3b4a-5968-7788-99aabbccddee"
BODY = b'{"data":{"version":"9.1.1","release":"9.1","repoid":"0123456789abcdef"}}'


def make_cert(directory: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pve-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


@dataclass
class TlsServer:
    port: int
    fingerprint: str
    received: list[bytes] = field(default_factory=list)
    handshakes: int = 0


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    cert_file, key_file, fp = make_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    listener = TLSListener(tcp, ctx, standard_compatible=False)
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    server = TlsServer(port=port, fingerprint=fp)

    async def handle(stream: anyio.abc.ByteStream) -> None:
        server.handshakes += 1
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = await stream.receive()
                server.received.append(chunk)
                buf += chunk
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n"
                + f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode()
            )
            await stream.send(head + BODY)
        except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError, OSError):
            pass
        finally:
            await stream.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield server
        tg.cancel_scope.cancel()


def cfg(server: TlsServer, fingerprint: str) -> ClientConfig:
    return ClientConfig(
        url=f"https://127.0.0.1:{server.port}", token_id="root@pam!mcp", token_secret=SECRET, fingerprint=fingerprint
    )


def test_normalize_fingerprint() -> None:
    hexes = "ab" * 32
    assert normalize_fingerprint(hexes) == ":".join(["AB"] * 32)
    assert normalize_fingerprint("SHA256 Fingerprint=" + ":".join(["ab"] * 32)) == ":".join(["AB"] * 32)
    with pytest.raises(ValueError, match="62 hex"):
        normalize_fingerprint("ab" * 31)


@pytest.mark.anyio
async def test_matching_pin_sends_request(tls_server: TlsServer) -> None:
    async with PveClient(cfg(tls_server, tls_server.fingerprint.lower())) as pve:
        assert (await pve.get("/version"))["version"] == "9.1.1"
    request = b"".join(tls_server.received)
    assert request.startswith(b"GET /api2/json/version HTTP/1.1")
    assert f"PVEAPIToken=root@pam!mcp={SECRET}".encode() in request


class CountingStream(httpcore2.AsyncNetworkStream):
    """Counts the application bytes written after the TLS handshake (i.e. HTTP request bytes)."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream, counter: dict[str, int], tls: bool = False) -> None:
        self._inner, self._counter, self._tls = inner, counter, tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._counter["tls_bytes" if self._tls else "plain_bytes"] += len(buffer)
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        self._counter["handshakes"] += 1
        return CountingStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._counter, True)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class CountingBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.counter = {"tls_bytes": 0, "plain_bytes": 0, "handshakes": 0}
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return CountingStream(stream, self.counter)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def counted_client(config: ClientConfig) -> tuple[PveClient, CountingBackend]:
    """The production transport (pinning backend and all) over a byte-counting network backend."""
    backend = CountingBackend()
    transport = PveTransport(
        ssl_context=build_ssl_context(fingerprint=config.fingerprint, ca_file=None, insecure=False),
        pin=config.fingerprint,
        max_connections=4,
        network_backend=backend,
    )
    return PveClient(config, transport=transport), backend


@pytest.mark.anyio
async def test_mismatching_pin_sends_no_byte(tls_server: TlsServer) -> None:
    wrong = ":".join(["00"] * 32)
    pve, backend = counted_client(cfg(tls_server, wrong))
    async with pve:
        for method, template, path in (
            ("GET", "/version", None),
            ("POST", "/nodes/{node}/qemu/{vmid}/status/start", {"node": "pve1", "vmid": 100}),
        ):
            with pytest.raises(PveError) as info:
                await pve.request(method, template, path=path)
            assert info.value.kind == "tls"
            assert wrong in info.value.message and tls_server.fingerprint in info.value.message
    assert backend.counter["handshakes"] == 2  # the TLS handshake happened for each attempt ...
    assert backend.counter["tls_bytes"] == 0  # ... and not one byte of HTTP followed it
    assert backend.counter["plain_bytes"] == 0


@pytest.mark.anyio
async def test_counting_backend_sees_request_bytes_when_pin_matches(tls_server: TlsServer) -> None:
    """Control for the test above: the counter does see the request when the pin is right."""
    pve, backend = counted_client(cfg(tls_server, tls_server.fingerprint))
    async with pve:
        assert (await pve.get("/version"))["version"] == "9.1.1"
    assert backend.counter["handshakes"] == 1 and backend.counter["tls_bytes"] > 0
