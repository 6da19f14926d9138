"""The one exception type of the Proxmox client, and the wording that makes it actionable.

Every failure a caller can see — an HTTP error from Proxmox, a refused connection, a timeout, a TLS or
pin failure, a path parameter we refused to send — becomes a :class:`PveError`.  One type means the MCP
door (and the CLI) needs exactly one ``except`` to turn any failure into a short, specific message for a
model; the ``kind`` field lets them branch without parsing text.

Wording rules (see DESIGN.md "Errors the model sees"): say what failed (method + path), Proxmox's own
words (reason phrase and/or body ``message``), and what to do next (``hint``).  Secrets never appear: the
client passes its secrets (``secrets=``) and every text field is scrubbed with :func:`scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

ErrorKind = Literal[
    "auth",  # 401, login failure, TFA-only account
    "permission",  # 403
    "params",  # 400, or a path parameter the client refused to send
    "not_found_or_state",  # 500: missing guest/config, locks, running/not running, unknown vmid
    "not_implemented",  # 501: no such API path/method on this server
    "unreachable",  # 595/596/597/599: pveproxy could not reach the target node
    "timeout",  # no answer in time
    "tls",  # certificate verification failure or fingerprint mismatch
    "connection",  # refused/reset/DNS — no usable connection to the API endpoint
    "server",  # other 5xx, or an answer that is not a Proxmox envelope
    "refused",  # the client refused the call itself (unknown operation, closed client)
]

# 595..599 are AnyEvent::HTTP transport codes that pveproxy forwards when proxying to another node.
UNREACHABLE_STATUSES = frozenset({595, 596, 597, 598, 599})

_PERM_RE = re.compile(r"^Permission check failed \((?P<path>/[^,]*), (?P<privs>[^)]+)\)")
_REDACTED = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a known secret in ``text`` by ``***``.

    Defence in depth: Proxmox does not echo credentials in its messages, but a future server, a proxy in
    between or a bug of ours might, and an error text ends up in a model's context and in logs.
    Secrets shorter than 4 characters are ignored (they would redact ordinary words).
    """
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _clean(text: str) -> str:
    """PVE messages end in ``\\n`` and may span lines; the model wants one tidy line per fact."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


class PveError(Exception):
    """A failed Proxmox call, with everything needed to explain it.

    Attributes:
        status: HTTP status from Proxmox, or ``None`` when no HTTP answer exists (network, TLS,
            timeout, or a refusal by the client itself).
        reason: Proxmox's reason phrase (first line of its message; the canonical place on every PVE
            version) — ``""`` when there was no answer.
        message: the body ``message`` (PVE >= 8.3) or else the reason phrase, without trailing newline.
        errors: per-parameter messages (400 answers, and path parameters the client refused).
        method, path: the request as sent (the concrete path, without ``/api2/json``).
        kind: a coarse class the door can branch on (see :data:`ErrorKind`).
        hint: what the caller should do next, specific to this failure.
        node: the node the call addressed, when known (for 595/596 and 500 on guests).
        host: ``host:port`` of the API endpoint, for network-level failures.
    """

    def __init__(
        self,
        *,
        kind: ErrorKind,
        message: str,
        hint: str = "",
        status: int | None = None,
        reason: str = "",
        errors: Mapping[str, str] | None = None,
        method: str = "",
        path: str = "",
        node: str | None = None,
        host: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        secret_list = [s for s in secrets if s]
        self.kind: ErrorKind = kind
        self.status = status
        self.reason = scrub(reason, secret_list)
        self.message = scrub(message, secret_list)
        self.errors: dict[str, str] = {k: scrub(_clean(str(v)), secret_list) for k, v in (errors or {}).items()}
        self.method = method
        self.path = scrub(path, secret_list)
        self.node = node
        self.host = host
        self.hint = scrub(hint, secret_list)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        """Short and model-readable: ``<what> failed: <Proxmox's words>. <hint>``."""
        where = f"{self.method} {self.path}".strip()
        head = f"{where}: " if where else ""
        code = f"{self.status} " if self.status is not None else ""
        text = f"{head}{code}{self.message}".rstrip()
        if self.errors:
            details = "; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
            text = f"{text} ({details})"
        if self.hint:
            text = f"{text} — {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only __init__: rebuild from the (already scrubbed) fields so copy/pickle work
        return (_rebuild, (self.__dict__.copy(),))

    def __repr__(self) -> str:
        return (
            f"PveError(kind={self.kind!r}, status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, message={self.message!r})"
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view for structured tool results and audit records."""
        out: dict[str, object] = {
            "kind": self.kind,
            "status": self.status,
            "message": self.message,
            "method": self.method,
            "path": self.path,
            "hint": self.hint,
        }
        if self.reason and self.reason != self.message:
            out["reason"] = self.reason
        if self.errors:
            out["errors"] = dict(self.errors)
        if self.node:
            out["node"] = self.node
        if self.host:
            out["host"] = self.host
        return out


def _rebuild(state: dict[str, Any]) -> PveError:
    err = PveError.__new__(PveError)
    err.__dict__.update(state)
    Exception.__init__(err, str(err))
    return err


def parse_permission_failure(message: str) -> tuple[str, str] | None:
    """Split ``Permission check failed (/vms/100, VM.PowerMgmt)`` into ``("/vms/100", "VM.PowerMgmt")``.

    Returns ``None`` for other 403 texts (e.g. the API-token-not-allowed variant, whose parenthesis
    holds a sentence, not an ACL path).
    """
    m = _PERM_RE.match(message.strip())
    if not m:
        return None
    return m.group("path").strip(), m.group("privs").strip()


def error_from_response(
    *,
    status: int,
    reason: str,
    body_message: str | None,
    body_errors: Mapping[str, str] | None,
    method: str,
    path: str,
    identity: str,
    identity_kind: Literal["token", "ticket"],
    node: str | None,
    secrets: Iterable[str] = (),
) -> PveError:
    """Build the PveError for a non-200 answer, choosing kind and hint from Proxmox's own words.

    ``identity`` names who we authenticated as (token id or user) so 401/403 hints say *which*
    credential to fix; it is an identifier, never a secret.
    """
    reason = _first_line(reason)
    message = _clean(body_message) if body_message else reason
    if not message:
        message = f"HTTP {status}"
    errors = dict(body_errors or {})
    kind: ErrorKind
    hint: str

    if status == 400:
        kind = "params"
        hint = "fix the listed parameters and call again; nothing was changed."
        if not errors:
            hint = "Proxmox refused the request parameters; nothing was changed."
    elif status == 401:
        kind = "auth"
        if identity_kind == "token":
            hint = (
                f"Proxmox rejected the API token {identity!r}: check the token id and secret, and that "
                "the token and its user exist, are enabled and not expired (pveum user token list)."
            )
        else:
            hint = (
                f"Proxmox rejected the login/ticket of user {identity!r}: check user, realm and password, "
                "and that the account is enabled."
            )
    elif status == 403:
        kind = "permission"
        parsed = parse_permission_failure(message)
        who = f"API token {identity!r}" if identity_kind == "token" else f"user {identity!r}"
        if parsed:
            acl_path, privs = parsed
            hint = f"the {who} lacks privilege {privs} on {acl_path}; grant a role with it on that path"
            if identity_kind == "token":
                hint += (
                    " to the user and, for a privilege-separated token, to the token itself "
                    f"(pveum acl modify {acl_path} --tokens '{identity}' --roles <role>)."
                )
            else:
                hint += f" (pveum acl modify {acl_path} --users '{identity}' --roles <role>)."
        elif "not available with API token" in message:
            hint = "this endpoint needs a ticket (user + password login); it cannot be called with an API token."
        else:
            hint = f"the {who} is not allowed to do this; ask an administrator to grant the needed privilege."
    elif status == 501:
        kind = "not_implemented"
        # Every request pvemcp sends is an operation of the bundled PVE API schema, so a 501 means this
        # cluster does not serve it (a package or feature not installed here), not that the path is unknown.
        hint = (
            "this cluster does not serve this operation although the PVE 9.1 API has it (a missing component "
            "or an older release); reach the goal another way or ask the administrator."
        )
    elif status in UNREACHABLE_STATUSES:
        kind = "unreachable"
        target = f"node {node!r}" if node else "the target node"
        hint = (
            f"{target} is unreachable from the API endpoint ({reason or 'no connection'}); it may be "
            "offline or partitioned — check the node (pvecm status) or address another node."
        )
    elif status == 500:
        kind = "not_found_or_state"
        low = message.lower()
        if "modified configuration" in low or "checksum mismatch" in low:
            # PVE::Tools::assert_if_modified (pve-common): the digest sent is not the config's current one.
            # A snapshot, a pending change or another user's edit all change it.
            hint = (
                "the config changed since its digest was read (a snapshot or another edit changes it); "
                "read it again (guest_config) and retry with the new digest, or omit digest."
            )
        elif "does not exist" in low and "configuration file" in low:
            hint = (
                "the guest does not exist on that node — it may have been deleted or migrated; resolve the vmid again."
            )
        elif "is locked" in low:
            hint = "another operation holds the guest lock; wait for its task to finish, then retry."
        elif "hostname lookup" in low or "no such cluster node" in low:
            hint = "that node name is not part of the cluster; list the nodes and use one of them."
        elif "no quorum" in low:
            hint = "the cluster has no quorum; restore quorum before changing anything."
        else:
            hint = "Proxmox refused the operation in the guest's current state; check its state and retry."
    else:
        kind = "server"
        hint = "Proxmox answered with a server error; retry later or check the pveproxy/pvedaemon logs."

    return PveError(
        kind=kind,
        message=message,
        hint=hint,
        status=status,
        reason=reason,
        errors=errors,
        method=method,
        path=path,
        node=node,
        secrets=secrets,
    )
