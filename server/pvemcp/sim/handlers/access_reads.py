"""``/access/users`` and ``/access/acl`` over the simulator's own credential store.

The users listed are exactly those the simulator authenticates (:class:`pvemcp.sim.auth.AuthService`),
with the API tokens it issues, and the ACL is what grants them their privileges: ``root@pam`` is the
superuser without any ACL entry, every other user holds its role on ``/``; privilege-separated tokens have
no ACL of their own (which is why they can do nothing). Secrets never appear here.
"""

from __future__ import annotations

from typing import Any

from pvemcp.sim.auth import User
from pvemcp.sim.perms import can
from pvemcp.sim.routing import Call, route

# user.cfg fields beyond what authentication needs. pve-access-control ``parse_user_config`` keeps names
# and comments only when non-empty but always sets ``email``: an empty field before the comment reads as "".
_PROFILES: dict[str, dict[str, str]] = {
    "root@pam": {"email": "admin@pvemcp.lan"},
    "auditor@pve": {"firstname": "Read", "lastname": "Only", "email": "", "comment": "Monitoring and reporting"},
}
_REALM_TYPES = {"pam": "pam", "pve": "pve"}  # domains.cfg of the simulator (see GET /access/domains)
_SUPERUSER = "root@pam"


def _user_entry(user: User, full: bool) -> dict[str, Any]:
    """pve-access-control ``API2/User.pm`` ``$extract_user_data`` plus the index's realm type."""
    entry: dict[str, Any] = {"enable": 1 if user.enabled else 0, "expire": 0, **_PROFILES.get(user.userid, {})}
    if full:
        entry["groups"] = ""  # the index joins the (empty) group list into a string
        entry["tokens"] = [
            {"tokenid": t.tokenid, "privsep": 1 if t.privsep else 0, "expire": t.expire}
            for _, t in sorted(user.tokens.items())
        ]
    realm = user.userid.rsplit("@", 1)[1]
    if realm in _REALM_TYPES:
        entry["realm-type"] = _REALM_TYPES[realm]
    entry["userid"] = user.userid
    return entry


@route("GET", "/access/users")
def users(call: Call) -> list[dict[str, Any]]:
    """User index: every user for ``User.Modify``/``Sys.Audit`` holders, else only the caller itself."""
    see_all = can(call.ident, "User.Modify") or can(call.ident, "Sys.Audit")
    wanted = call.params.get("enabled")
    out: list[dict[str, Any]] = []
    for userid in sorted(call.sim.auth.users):
        if not see_all and userid != call.ident.authid:
            continue  # a token's authid is user!token, so a token without rights sees nobody
        user = call.sim.auth.users[userid]
        if wanted is not None and bool(user.enabled) != call.flag("enabled"):
            continue
        out.append(_user_entry(user, call.flag("full")))
    return out


@route("GET", "/access/acl")
def acl(call: Call) -> list[dict[str, Any]]:
    """``API2/ACL.pm`` ``read_acl``: all entries for ``Sys.Audit`` on ``/access``, else those on paths where
    the caller may modify permissions (the simulator's privileges hold on every path)."""
    if not (can(call.ident, "Sys.Audit") or can(call.ident, "Permissions.Modify")):
        return []
    out: list[dict[str, Any]] = []
    for userid in sorted(call.sim.auth.users):
        if userid == _SUPERUSER:
            continue  # root@pam gets every privilege without an ACL entry
        user = call.sim.auth.users[userid]
        out.append({"path": "/", "type": "user", "ugid": userid, "roleid": user.role, "propagate": 1})
    return out
