"""The API request pipeline, in PVE's order (notes §1.4).

1. find the operation and its handler (501 when the path/method is unknown or not modelled),
2. merge query and body parameters; a body/query value that contradicts the path → 400,
3. authenticate (401, empty body) — ticket (cookie or header, CSRF for non-GET) or API token,
4. API token on an ``allowtoken => 0`` operation → 403,
5. permission check from the operation's ``permissions`` (403) — before any parameter validation,
6. proxy to ``{node}``: unknown node → 500 ``hostname lookup …``; offline node → 595, empty body,
7. parameter validation (400),
8. the handler (500 or data).

This module knows nothing about HTTP framing; ``app.py`` turns an :class:`ApiResult` into bytes.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pvemcp.dialect.model import Operation
from pvemcp.sim import handlers as _handlers  # noqa: F401  (importing registers the routes)
from pvemcp.sim.auth import Identity
from pvemcp.sim.errors import PveHttpError, auth_error, not_implemented, param_error
from pvemcp.sim.perms import check_permissions
from pvemcp.sim.routing import ROUTES, Call
from pvemcp.sim.simulator import Simulator
from pvemcp.sim.tasks import Task
from pvemcp.sim.validate import validate_params

# calls that need no authentication (``PVE::HTTPServer::auth_handler``)
NO_AUTH: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/access/domains"),
        ("GET", "/access/ticket"),
        ("POST", "/access/ticket"),
        ("POST", "/access/openid/login"),
        ("POST", "/access/openid/auth-url"),
    }
)

_SLASH = "\x00slash\x00"


@dataclass
class ApiRequest:
    """A parsed request: API path (no ``/api2/json``), decoded segments, parameters and headers."""

    method: str
    path: str
    segments: list[str]
    query: dict[str, Any]
    body: dict[str, Any]
    headers: dict[str, str]
    cookies: dict[str, str]


@dataclass
class ApiResult:
    """What to answer: status, ``data`` (+``total``) or an error message/errors, and who asked."""

    status: int = 200
    data: Any = None
    total: int | None = None
    message: str | None = None
    errors: dict[str, str] | None = None
    empty_body: bool = False
    reason: str | None = None
    auth: str = "none"
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# Subtrees registered with ``fragmentDelimiter => ''``: everything after the prefix is one path parameter.
# pve-storage ``PVE/API2/Storage/Status.pm`` registers ``{storage}/content`` that way "because volume IDs may
# contain a slash", and pve-common ``PVE/RESTHandler.pm`` ``map_path_to_methods`` joins the rest of the stack
# with ``/`` when it enters such a subclass. ``None`` matches any one segment.
FRAGMENT_TAILS: tuple[tuple[str | None, ...], ...] = (("nodes", None, "storage", None, "content"),)


def split_path(raw_path: str) -> list[str]:
    """The path's segments as PVE sees them.

    pve-http-server ``PVE/APIServer/AnyEvent.pm`` (``handle_api2_request``) percent-decodes the whole path
    first (``uri_unescape``), then ``RESTHandler::find_handler`` splits it on ``/+`` and skips empty
    fragments — so an encoded ``%2F`` is a separator like a literal ``/``. Under a fragment-delimited
    subtree the remaining segments are joined back into one (``local:vztmpl/x.tar.zst``).
    """
    segments = [s for s in unquote(raw_path).split("/") if s]
    for prefix in FRAGMENT_TAILS:
        n = len(prefix)
        if len(segments) > n + 1 and all(p is None or p == s for p, s in zip(prefix, segments, strict=False)):
            return [*segments[:n], "/".join(segments[n:])]
    return segments


def _match(sim: Simulator, method: str, segments: list[str]) -> tuple[Operation, dict[str, str]] | None:
    # the spec matcher splits on "/", so hide the slashes of a joined fragment-delimited tail
    hidden = [s.replace("/", _SLASH) for s in segments]
    hit = sim.spec.match(method, "/" + "/".join(hidden))
    if hit is None:
        return None
    op, bound = hit
    return op, {k: v.replace(_SLASH, "/") for k, v in bound.items()}


def _authenticate(sim: Simulator, req: ApiRequest) -> Identity:
    cookie = req.cookies.get("PVEAuthCookie")
    ticket = unquote(cookie) if cookie else None
    token_value: str | None = None
    header = req.headers.get("authorization", "")
    if header.startswith("PVEAuthCookie="):
        ticket = ticket or unquote(header[len("PVEAuthCookie=") :])
    elif header.startswith(("PVEAPIToken=", "PVEAPIToken ")):
        token_value = header[len("PVEAPIToken=") :].strip()
    if ticket:
        userid = sim.auth.verify_ticket(ticket)
        if userid is None:
            raise auth_error("Authentication failed!")
        if req.method != "GET" and not sim.auth.verify_csrf(req.headers.get("csrfpreventiontoken"), userid):
            raise auth_error("Permission denied - invalid csrf token")
        return sim.auth.identity(userid, None, "ticket")
    if token_value is not None:
        found = sim.auth.verify_token(token_value)
        if found is None:
            raise auth_error("Authentication failed!")
        userid, token = found
        return sim.auth.identity(userid, token, "token")
    raise auth_error("No ticket")


def _merge(req: ApiRequest, bound: dict[str, str]) -> dict[str, Any]:
    """Body, then query (query wins), then path parameters — conflicting duplicates are a 400."""
    params: dict[str, Any] = {}
    for source in (req.body, req.query):
        for k, v in source.items():
            if k == "_dc":
                continue
            params[k] = v
    conflicts: dict[str, str] = {}
    for k, v in bound.items():
        if k in params and str(params[k] if not isinstance(params[k], bool) else int(params[k])) != v:
            conflicts[k] = "duplicate parameter (already defined in URI) with conflicting values!"
        params[k] = v
    if conflicts:
        raise param_error(conflicts)
    return params


def _proxy_check(sim: Simulator, op: Operation, params: dict[str, Any]) -> None:
    if op.proxyto != "node" or "node" not in params:
        return
    node = str(params["node"])
    if node not in sim.state.nodes:
        raise PveHttpError(
            500,
            f"hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known\n",
        )
    if not sim.state.nodes[node].online:
        raise PveHttpError(595, "No route to host", empty_body=True)


def dispatch(sim: Simulator, req: ApiRequest, result: ApiResult) -> None:
    """Run the pipeline and fill ``result`` (status, data or error); never raises."""
    try:
        _dispatch(sim, req, result)
    except PveHttpError as err:
        result.status = err.status
        result.message = err.message
        result.errors = err.errors
        result.empty_body = err.empty_body
    except Exception as err:  # a simulator bug: answer like PVE answers an unexpected die
        traceback.print_exc(file=sys.stderr)
        result.status = 500
        result.message = f"internal simulator error: {err}\n"


def _dispatch(sim: Simulator, req: ApiRequest, result: ApiResult) -> None:
    sim.tasks.tick()
    hit = _match(sim, req.method, req.segments)
    if hit is None:
        raise not_implemented(req.method, req.path)
    op, bound = hit
    route = ROUTES.get(op.key)
    generic_index = route is None and sim.is_directory_index(op)
    if route is None and not generic_index:
        raise not_implemented(req.method, req.path)
    params = _merge(req, bound)
    if (req.method, op.path) in NO_AUTH:
        ident = Identity("", None, frozenset(), "none")
    else:
        ident = _authenticate(sim, req)
        result.auth = ident.via
        result.user = ident.authid
        if ident.via == "token" and not op.allowtoken:
            raise PveHttpError(
                403,
                f"Permission check failed (URI '{req.path}' not available with API token, need proper ticket.)\n",
            )
        check_permissions(op.permissions, op.key, ident, params)
    _proxy_check(sim, op, params)
    typed = validate_params(op.input_schema, params)
    call = Call(sim=sim, ident=ident, method=req.method, key=op.key, params=typed)
    if route is None:
        data: Any = sim.directory_index(op)
    else:
        data = route.handler(call)
    if isinstance(data, Task):
        data = str(data.upid)
    result.data = data
    result.total = call.total
    if call.extra.get("auth"):
        result.auth = str(call.extra["auth"])
        result.user = call.extra.get("user")
