"""The simulator's ASGI application: PVE's HTTP framing around :func:`pvemcp.sim.dispatch.dispatch`.

What it reproduces (notes §1): ``/api2/json`` only; success ``{"data": …}`` plus ``total`` when set and
non-zero, never ``success``; errors with PVE 9's body ``{"data": null, "message": "…\\n"[, "errors": …]}``
and the first message line as reason phrase (written by :mod:`pvemcp.sim.protocol`); 401 from the auth
layer and 595 from the proxy with an empty body; ``Connection: close`` on errors; PVE's headers
(``Server: pve-api-daemon/3.0``, ``Cache-Control: max-age=0``, ``Pragma: no-cache``, ``Expires``); gzip for
bodies over 1 KiB when the client accepts it. Faults (latency, errors, resets, hangs) are applied here,
before the request reaches the API.

It is a plain ASGI callable rather than a Starlette app: there is exactly one route (``/api2/…``) and the
hot path (``/cluster/resources`` with 10,000 guests) is faster without a framework in between.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import anyio

from pvemcp.sim.dispatch import ApiRequest, ApiResult, dispatch, split_path
from pvemcp.sim.handlers.apidoc import APIDOC_PATH, apidoc_js
from pvemcp.sim.protocol import REASON_HEADER, RESET_HEADER
from pvemcp.sim.routing import PreEncoded
from pvemcp.sim.simulator import SECRET_PARAMS, RequestRecord, Simulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIX = "/api2/json"
MAX_BODY = 512 * 1024
GZIP_MIN = 1024


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _first_line(message: str) -> str:
    line = message.split("\n", 1)[0]
    return line.replace("\r", " ") or "Error"


def _parse_form(raw: bytes) -> dict[str, Any]:
    """``application/x-www-form-urlencoded``; repeated keys become lists, as PVE's decoder does."""
    out: dict[str, Any] = {}
    for k, v in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if k in out:
            prev = out[k]
            out[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
        else:
            out[k] = v
    return out


class SimApp:
    """ASGI app serving one :class:`Simulator`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.closing = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.closing.set()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        too_big = False
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            body = msg.get("body", b"")
            size += len(body)
            if size <= MAX_BODY:
                chunks.append(body)
            else:
                too_big = True
            if not msg.get("more_body", False):
                break
        return b"".join(chunks), too_big

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        method: str = scope["method"].upper()
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path_text = raw_path.decode("latin-1").split("?", 1)[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = _parse_form(scope.get("query_string", b""))
        api_path = path_text[len(API_PREFIX) :] if path_text.startswith(API_PREFIX + "/") else None
        body, too_big = await self._read_body(receive)
        result = ApiResult()
        log_path = api_path if api_path is not None else path_text

        sim.sync_faults()
        delay = sim.latency_s
        fired = sim.faults.select(method, log_path)
        for fault in fired:
            if fault.kind == "latency":
                delay += fault.delay_s
        if delay > 0:
            await anyio.sleep(delay)
        for fault in fired:
            if fault.kind == "hang":
                with anyio.move_on_after(fault.delay_s if fault.delay_s > 0 else 3600):
                    await self.closing.wait()
                if self.closing.is_set() or fault.delay_s <= 0:
                    self._record(method, log_path, query, 0, result)
                    await self._reset(send)
                    return
            if fault.kind == "reset":
                self._record(method, log_path, query, 0, result)
                await self._reset(send)
                return
        error_fault = next((f for f in fired if f.kind == "error"), None)

        if error_fault is not None:
            msg = (error_fault.message or "simulated fault").rstrip("\n") + "\n"
            result.status = error_fault.status
            result.message = msg
        elif api_path is None and method == "GET" and path_text == APIDOC_PATH:
            document = apidoc_js()
            self._record(method, log_path, query, 200 if document else 404, result)
            await self._static(send, document, "gzip" in headers.get("accept-encoding", ""))
            return
        elif api_path is None:
            result.status = 501
            result.message = "no such uri"
            result.extra["plain"] = True
        elif method not in ("GET", "POST", "PUT", "DELETE"):
            result.status = 501
            result.message = f"method '{method}' not available"
            result.extra["plain"] = True
        elif method in ("GET", "DELETE") and body:
            result.status = 501
            result.message = f"Unexpected content for method '{method}'"
            result.extra["plain"] = True
        elif too_big:
            result.status = 501
            result.message = "for data too large"
            result.extra["plain"] = True
        else:
            body_params: dict[str, Any] = {}
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            bad_json = False
            if body:
                if ctype == "application/json":
                    try:
                        decoded = json.loads(body)
                        body_params = decoded if isinstance(decoded, dict) else {}
                    except ValueError:
                        bad_json = True
                else:
                    body_params = _parse_form(body)
            if bad_json:
                result.status = 400
                result.message = "malformed JSON string\n"
            else:
                cookies = _cookies(headers.get("cookie", ""))
                req = ApiRequest(
                    method=method,
                    path=api_path,
                    segments=split_path(api_path),
                    query=query,
                    body=body_params,
                    headers=headers,
                    cookies=cookies,
                )
                dispatch(sim, req, result)
        self._record(method, log_path, query, result.status, result)
        await self._respond(send, result, "gzip" in headers.get("accept-encoding", ""))

    async def _static(self, send: Send, body: bytes | None, accept_gzip: bool) -> None:
        """A static file outside /api2 (the API viewer's schema), or pveproxy's plain 404."""
        status, ctype = (200, b"application/javascript") if body is not None else (404, b"text/plain")
        content = body if body is not None else b"File not found\n"
        hdrs: list[tuple[bytes, bytes]] = [(b"server", b"pve-api-daemon/3.0"), (b"content-type", ctype)]
        if accept_gzip and len(content) > GZIP_MIN:
            content = gzip.compress(content, compresslevel=1, mtime=0)
            hdrs.append((b"content-encoding", b"gzip"))
        hdrs.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": content})

    def _record(self, method: str, path: str, query: dict[str, Any], status: int, result: ApiResult) -> None:
        safe = {k: ("***" if k in SECRET_PARAMS else str(v)) for k, v in query.items()}
        self.sim.record(RequestRecord(method, path, safe, status, result.auth, result.user))

    async def _reset(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": [(RESET_HEADER, b"1")]})
        await send({"type": "http.response.body", "body": b""})

    async def _respond(self, send: Send, result: ApiResult, accept_gzip: bool) -> None:
        status = result.status
        hdrs: list[tuple[bytes, bytes]] = [
            (b"server", b"pve-api-daemon/3.0"),
            (b"cache-control", b"max-age=0"),
            (b"pragma", b"no-cache"),
            (b"expires", formatdate(usegmt=True).encode()),
        ]
        if status >= 400:
            hdrs.append((b"connection", b"close"))
        pre = result.data if isinstance(result.data, PreEncoded) else None
        if status == 200 and pre is not None:
            body = pre.body
            reason = "OK"
            ctype = b"application/json;charset=UTF-8"
        elif status == 200:
            payload: dict[str, Any] = {"data": result.data}
            if result.total:
                payload["total"] = result.total
            body = _encode(payload)
            reason = "OK"
            ctype = b"application/json;charset=UTF-8"
        else:
            message = result.message or ""
            reason = _first_line(message)
            if result.empty_body:
                body = b""
                ctype = b""
            elif result.extra.get("plain"):
                body = message.encode()
                ctype = b"text/plain;charset=UTF-8"
            else:
                err: dict[str, Any] = {"data": None, "message": message}
                if result.errors:
                    err["errors"] = result.errors
                body = _encode(err)
                ctype = b"application/json;charset=UTF-8"
        if ctype:
            hdrs.append((b"content-type", ctype))
        if accept_gzip and len(body) > GZIP_MIN:
            body = pre.gzipped() if pre is not None else gzip.compress(body, compresslevel=1, mtime=0)
            hdrs.append((b"content-encoding", b"gzip"))
            hdrs.append((b"vary", b"Accept-Encoding"))
        hdrs.append((b"content-length", str(len(body)).encode()))
        hdrs.append((REASON_HEADER, reason.encode("latin-1", "replace")))
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out
