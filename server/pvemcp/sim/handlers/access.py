"""``/access``: ticket login and renewal, permissions of the caller, realms (notes §2)."""

from __future__ import annotations

from typing import Any

from pvemcp.sim.errors import PveHttpError
from pvemcp.sim.routing import Call, route

_DEFAULT_PATHS = ("/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms", "/mapping")


def _auth_failure() -> PveHttpError:
    # raised by the handler, not the auth layer: 401 *with* a JSON body
    return PveHttpError(401, "authentication failure\n")


@route("POST", "/access/ticket")
def create_ticket(call: Call) -> dict[str, Any]:
    auth = call.sim.auth
    username = call.req("username")
    realm = call.text("realm")
    if realm and "@" not in username:
        username = f"{username}@{realm}"
    password = call.req("password")
    if call.text("otp") or call.text("tfa-challenge"):
        raise _auth_failure()  # no simulated user has TFA configured
    userid: str | None
    if password.startswith("PVE:"):
        userid = auth.verify_ticket(password)
        if userid is None or (userid != username and userid != "root@pam"):
            raise _auth_failure()
        userid = username
        if username not in auth.users:
            raise _auth_failure()
    else:
        if not auth.check_password(username, password):
            raise _auth_failure()
        userid = username
    path = call.text("path")
    privs = call.text("privs")
    ident = auth.identity(userid, None, "ticket")
    call.extra["auth"] = "password"
    call.extra["user"] = userid
    if path and privs:
        # verify mode: just check the privileges, no new ticket
        for priv in privs.replace(";", ",").split(","):
            if priv and not ident.has(priv.strip()):
                raise _auth_failure()
        return {"username": userid}
    ticket, csrf = auth.issue_ticket(userid)
    data: dict[str, Any] = {
        "username": userid,
        "ticket": ticket,
        "CSRFPreventionToken": csrf,
        "cap": auth.cap(ident),
    }
    if len(call.sim.state.nodes) > 1 and ident.has("Sys.Audit"):
        data["clustername"] = call.sim.state.cluster_name
    return data


@route("GET", "/access/ticket")
def ticket_dummy(call: Call) -> None:
    return None


@route("GET", "/access/domains")
def domains(call: Call) -> list[dict[str, Any]]:
    return [
        {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
        {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"},
    ]


@route("GET", "/access/permissions")
def permissions(call: Call) -> dict[str, dict[str, int]]:
    ident = call.ident
    auth = call.sim.auth
    wanted = call.text("userid")
    target = ident
    if wanted and wanted != ident.authid:
        if not ident.has("Sys.Audit"):
            raise PveHttpError(403, "Permission check failed (/access, Sys.Audit)\n")
        if "!" in wanted:
            user, tokid = wanted.split("!", 1)
            u = auth.users.get(user)
            token = u.tokens.get(tokid) if u else None
            if u is None or token is None:
                raise PveHttpError(500, f"no such token '{tokid}' for user '{user}'\n")
            target = auth.identity(user, token, "token")
        else:
            if wanted not in auth.users:
                raise PveHttpError(500, f"no such user ('{wanted}')\n")
            target = auth.identity(wanted, None, "ticket")
    privs = {p: 1 for p in sorted(target.privileges)}
    path = call.text("path")
    if path:
        return {path: dict(privs)} if privs else {path: {}}
    if not privs:
        return {}
    paths = list(_DEFAULT_PATHS) + [f"/pool/{p}" for p in sorted(call.sim.state.pools)]
    return {p: dict(privs) for p in paths}
