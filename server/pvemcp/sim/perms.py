"""Permission checks as ``PVE::RPCEnvironment::check_api2_permissions`` performs them.

Each operation's ``permissions`` (from openapi.json, PVE's own description) is evaluated before parameter
validation, with the raw request parameters substituted into paths (``/vms/{vmid}``). Operations whose
schema says ``user: all`` check inside the handler in PVE; for the ones the simulator implements, the same
checks live in :data:`HANDLER_CHECKS` so that the read-only identity gets the 403 PVE would give.

All ACLs of the simulated users sit on ``/`` and propagate, so a user's privileges do not depend on the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pvemcp.sim.auth import Identity
from pvemcp.sim.errors import PveHttpError, perm_error

_TEMPLATE_RE = re.compile(r"\{([^}]+)\}")

# "METHOD /template" -> check expression, for operations whose schema permission is ``user: all``
# (PVE checks them in the handler; the expressions below are what those handlers enforce first).
HANDLER_CHECKS: dict[str, list[Any]] = {
    "POST /nodes/{node}/qemu": [
        "or",
        ["perm", "/vms/{vmid}", ["VM.Allocate"]],
        ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"],
    ],
    "POST /nodes/{node}/lxc": [
        "or",
        ["perm", "/vms/{vmid}", ["VM.Allocate"]],
        ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"],
    ],
}


def _vzdump_check(ident: Identity, params: Mapping[str, Any]) -> None:
    """vzdump: ``VM.Backup`` on every listed guest (``/vms`` when ``all``/``pool`` selects them)."""
    if ident.has("VM.Backup"):
        return
    ids = [x for x in re.split(r"[,;\s]+", str(params.get("vmid") or "")) if x]
    raise _Denied(f"/vms/{ids[0]}, VM.Backup" if ids else "/vms, VM.Backup")


CALLABLE_CHECKS: dict[str, Callable[[Identity, Mapping[str, Any]], None]] = {
    "POST /nodes/{node}/vzdump": _vzdump_check,
}


class _Denied(Exception):
    def __init__(self, detail: str | None) -> None:
        super().__init__(detail or "")
        self.detail = detail


def _substitute(template: str, params: Mapping[str, Any]) -> str:
    def repl(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        if isinstance(value, list):
            value = value[0] if value else ""
        return "" if value is None else str(value)

    path = _TEMPLATE_RE.sub(repl, template)
    path = re.sub(r"/+", "/", path)
    return path.rstrip("/") or "/"


def _eval(check: list[Any], ident: Identity, params: Mapping[str, Any], noerr: bool) -> bool:
    """One node of PVE's check tree; raises :class:`_Denied` (with PVE's detail) unless ``noerr``."""
    test = check[0]
    if test == "and":
        for sub in check[1:]:
            _eval(sub, ident, params, False)
        return True
    if test == "or":
        for sub in check[1:]:
            if _eval(sub, ident, params, True):
                return True
        if noerr:
            return False
        raise _Denied(None)
    if test == "perm":
        tmpl: str = check[1]
        privs: list[str] = list(check[2])
        opts = dict(zip(check[3::2], check[4::2], strict=False))
        req = opts.get("require_param")
        if req and params.get(req) in (None, ""):
            if noerr:
                return False
            raise _Denied(None)
        path = _substitute(tmpl, params)
        if opts.get("any"):
            if any(ident.has(p) for p in privs):
                return True
            if noerr:
                return False
            raise _Denied(f"{path}, {'|'.join(privs)}")
        for p in privs:
            if not ident.has(p):
                if noerr:
                    return False
                raise _Denied(f"{path}, {p}")
        return True
    if test == "userid-param":
        sub = check[1]
        if sub == "self":
            if params.get("userid") == ident.userid:
                return True
            if noerr:
                return False
            raise _Denied(None)
        realm = str(params.get("userid", "")).rpartition("@")[2]
        return _eval(["perm", f"/access/realm/{realm}", ["Realm.AllocateUser"]], ident, params, noerr)
    if test == "userid-group":
        privs = list(check[1])
        return _eval(["perm", "/access/groups", privs, "any", 1], ident, params, noerr)
    if test == "perm-modify":
        path = _substitute(check[1], params)
        extra = (
            ["Datastore.Allocate"]
            if path.startswith("/storage/")
            else ["VM.Allocate"]
            if path.startswith("/vms/")
            else ["Pool.Allocate"]
            if path.startswith("/pool/")
            else []
        )
        return _eval(["perm", path, ["Permissions.Modify", *extra], "any", 1], ident, params, noerr)
    # an unknown test: fail closed, as PVE dies ("unknown permission test")
    if noerr:
        return False
    raise _Denied(None)


def check_permissions(
    permissions: Mapping[str, Any] | None,
    key: str,
    ident: Identity,
    params: Mapping[str, Any],
) -> None:
    """Raise PVE's 403 if ``ident`` may not call the operation ``key`` with ``params``."""
    if ident.userid == "root@pam" and ident.token is None:
        return  # PVE: "return 1 if $username eq 'root@pam'"
    try:
        if permissions is None:
            raise _Denied("user != root@pam")
        if permissions.get("user") == "world":
            return
        if permissions.get("user") == "all":
            extra = HANDLER_CHECKS.get(key)
            if extra is not None:
                _eval(extra, ident, params, False)
            func = CALLABLE_CHECKS.get(key)
            if func is not None:
                func(ident, params)
            return
        check = permissions.get("check")
        if check:
            _eval(list(check), ident, params, False)
            return
        raise _Denied(None)
    except _Denied as denied:
        raise _perm_exc(denied.detail) from None


def _perm_exc(detail: str | None) -> PveHttpError:
    if detail is None:
        return PveHttpError(403, "Permission check failed\n")
    return perm_error(detail)


def can(ident: Identity, priv: str) -> bool:
    """List filtering (``/cluster/resources`` etc.): silently drop what the caller may not audit."""
    return ident.has(priv)
