"""Users, API tokens, tickets, CSRF tokens and privileges of the simulated cluster.

Mechanics follow PVE (notes §2): tickets ``PVE:<userid>:<8-hex time>::<signature>`` valid for 2 h on the
simulated clock (5 min tolerance for tickets from the future), renewal by posting a valid ticket as the
password, CSRF tokens ``<8-hex time>:<43-char base64 HMAC>`` bound to the user, required for every non-GET
request made with a ticket; API tokens ``PVEAPIToken=user@realm!id=secret`` (split at the last ``=``) need
no CSRF token. Signatures are HMACs with a per-run key rather than PVE's RSA signature — same shape,
verifiable only by this server, which is all a client may assume.

Secrets (passwords, token secrets, tickets) are generated per run, never logged, and only handed out
through the banner / the runner object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field

from pvemcp.sim.clock import SimClock

TICKET_LIFETIME = 2 * 3600
TICKET_FUTURE_TOLERANCE = 300

ALL_PRIVILEGES: tuple[str, ...] = (
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.FileRead",
    "VM.GuestAgent.FileSystemMgmt",
    "VM.GuestAgent.FileWrite",
    "VM.GuestAgent.Unrestricted",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Replicate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
)

ROLES: dict[str, frozenset[str]] = {
    "Administrator": frozenset(ALL_PRIVILEGES),
    "PVEAuditor": frozenset(
        {
            "Datastore.Audit",
            "Mapping.Audit",
            "Pool.Audit",
            "SDN.Audit",
            "Sys.Audit",
            "VM.Audit",
            "VM.GuestAgent.Audit",
        }
    ),
    "NoAccess": frozenset(),
}

# categories of the ``cap`` object returned with a ticket (``compute_api_permission``)
_CAP_PREFIXES: dict[str, tuple[str, ...]] = {
    "vms": ("VM.", "Permissions.Modify"),
    "access": ("User.", "Group.", "Permissions.Modify"),
    "storage": ("Datastore.", "Permissions.Modify"),
    "nodes": ("Sys.", "Permissions.Modify"),
    "sdn": ("SDN.", "Permissions.Modify"),
    "dc": ("Sys.Audit", "Sys.Modify", "SDN."),
    "mapping": ("Mapping.", "Permissions.Modify"),
}


@dataclass
class User:
    """A user with one role on ``/`` (propagating) — enough for an admin and an auditor."""

    userid: str
    password: str
    role: str
    enabled: bool = True
    tokens: dict[str, ApiToken] = field(default_factory=dict)


@dataclass
class ApiToken:
    """``user@realm!tokenid``; ``privsep`` tokens get only their own ACLs (none here)."""

    tokenid: str
    secret: str
    privsep: bool = False
    expire: int = 0


@dataclass(frozen=True)
class Identity:
    """Who a request runs as: the user, and the full token id when it came with an API token."""

    userid: str
    token: str | None
    privileges: frozenset[str]
    via: str  # "ticket" | "token"

    @property
    def authid(self) -> str:
        """What PVE records as task owner: ``root@pam`` or ``root@pam!mytoken``."""
        return f"{self.userid}!{self.token}" if self.token else self.userid

    def has(self, priv: str) -> bool:
        return priv in self.privileges


class AuthService:
    """Credential store and ticket/CSRF mint of one simulator run."""

    def __init__(self, clock: SimClock, rng_seed: int | None = None) -> None:
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self.ticket_lifetime = TICKET_LIFETIME
        self._expired_before: float = -1.0
        admin = User("root@pam", secrets.token_urlsafe(12), "Administrator")
        admin.tokens["pvemcp"] = ApiToken("pvemcp", str(uuid.uuid4()))
        auditor = User("auditor@pve", secrets.token_urlsafe(12), "PVEAuditor")
        auditor.tokens["ro"] = ApiToken("ro", str(uuid.uuid4()))
        admin.tokens["privsep"] = ApiToken("privsep", str(uuid.uuid4()), privsep=True)
        self.users: dict[str, User] = {u.userid: u for u in (admin, auditor)}

    # ---- well-known identities (handed to the banner / runner) -------------------------------------

    @property
    def admin(self) -> User:
        return self.users["root@pam"]

    @property
    def auditor(self) -> User:
        return self.users["auditor@pve"]

    # ---- privileges ----------------------------------------------------------------------------------

    def privileges_of(self, userid: str, token: ApiToken | None = None) -> frozenset[str]:
        user = self.users.get(userid)
        if user is None:
            return frozenset()
        privs = ROLES.get(user.role, frozenset())
        if token is not None and token.privsep:
            return frozenset()  # privsep token without ACLs of its own: intersection is empty
        return privs

    def identity(self, userid: str, token: ApiToken | None, via: str) -> Identity:
        return Identity(userid, token.tokenid if token else None, self.privileges_of(userid, token), via)

    def cap(self, ident: Identity) -> dict[str, dict[str, int]]:
        """The ``cap`` object of a ticket response: privileges grouped per GUI category."""
        out: dict[str, dict[str, int]] = {}
        for cat, prefixes in _CAP_PREFIXES.items():
            out[cat] = {p: 1 for p in sorted(ident.privileges) if p.startswith(prefixes)}
        return out

    # ---- tickets -------------------------------------------------------------------------------------

    def _sign(self, data: str) -> str:
        return base64.b64encode(hmac.new(self._key, data.encode(), hashlib.sha256).digest()).decode()

    def issue_ticket(self, userid: str) -> tuple[str, str]:
        """A new (ticket, CSRFPreventionToken) for ``userid`` stamped with the simulated time."""
        # after expire_tickets() new tickets must not fall into the expired second
        issued = max(int(self.clock.now()), int(self._expired_before) + 1)
        stamp = f"{issued:08X}"
        plain = f"PVE:{userid}:{stamp}"
        ticket = f"{plain}::{self._sign(plain)}"
        csrf_mac = hmac.new(self._key, f"{stamp}:{userid}".encode(), hashlib.sha256).digest()
        csrf = f"{stamp}:{base64.b64encode(csrf_mac).decode().rstrip('=')}"
        return ticket, csrf

    def verify_ticket(self, ticket: str) -> str | None:
        """The userid of a valid, unexpired ticket, else None (expired, forged, half TFA ticket)."""
        try:
            plain, sig = ticket.split("::", 1)
            prefix, userid, stamp = plain.split(":")
        except ValueError:
            return None
        if prefix != "PVE" or len(stamp) != 8:
            return None
        if not hmac.compare_digest(sig, self._sign(plain)):
            return None
        try:
            issued = int(stamp, 16)
        except ValueError:
            return None
        if issued <= self._expired_before:
            return None
        age = self.clock.now() - issued
        if age <= -TICKET_FUTURE_TOLERANCE or age >= self.ticket_lifetime:
            return None
        user = self.users.get(userid)
        if user is None or not user.enabled:
            return None
        return userid

    def verify_csrf(self, token: str | None, userid: str) -> bool:
        if not token or ":" not in token:
            return False
        stamp, mac = token.split(":", 1)
        try:
            issued = int(stamp, 16)
        except ValueError:
            return False
        expect = hmac.new(self._key, f"{stamp}:{userid}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(mac, base64.b64encode(expect).decode().rstrip("=")):
            return False
        age = self.clock.now() - issued
        return -TICKET_FUTURE_TOLERANCE < age < TICKET_LIFETIME

    def expire_tickets(self) -> None:
        """Make every ticket issued so far invalid (as if they all aged past the 2 h lifetime)."""
        self._expired_before = int(self.clock.now())

    # ---- password / token checks -----------------------------------------------------------------------

    def check_password(self, userid: str, password: str) -> bool:
        user = self.users.get(userid)
        if user is None or not user.enabled:
            return False
        return hmac.compare_digest(user.password.encode(), password.encode())

    def verify_token(self, value: str) -> tuple[str, ApiToken] | None:
        """``user@realm!tokenid=secret`` (split at the last ``=``) → (userid, token), else None."""
        if "=" not in value:
            return None
        full, secret = value.rsplit("=", 1)
        if "!" not in full:
            return None
        userid, tokenid = full.split("!", 1)
        user = self.users.get(userid)
        if user is None or not user.enabled:
            return None
        token = user.tokens.get(tokenid)
        if token is None or not hmac.compare_digest(token.secret.encode(), secret.encode()):
            return None
        if token.expire and token.expire < self.clock.now():
            return None
        return userid, token
