"""UPIDs: Proxmox's task identifiers, parsed with the exact regex of pve-common's ``PVE::UPID``.

A UPID names the node that runs the task, so the client can poll the right ``/nodes/{node}/tasks``
endpoint without asking anyone; its type and id tell a model what the task is.  Parsing is strict on
purpose: mocks found in public repositories contain UPIDs that real PVE never emits (missing the empty id
field, no realm, no trailing colon); accepting those would hide bugs in our simulator or the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Verbatim from pve-api-behavior.md §3.1 (pve-common:src/PVE/UPID.pm decoder).
UPID_RE = re.compile(
    r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
    r"([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$"
)

# pve-access-control src/PVE/AccessControl.pm ``$token_full_regex``: ``user@realm!tokenid``, with
# PVE::Auth::Plugin's ``$user_regex`` (``[^\s:/]+``) and ``$realm_regex``, which the token's own name reuses.
_REALM = r"[A-Za-z][A-Za-z0-9\.\-_]+"
_TOKEN_FULL_RE = re.compile(rf"([^\s:/]+@{_REALM})!({_REALM})")


def split_tokenid(authid: str) -> tuple[str, str | None]:
    """``root@pam!mcp`` -> (``root@pam``, ``mcp``); a plain user id -> (the id, ``None``).

    As the task views of pve-manager split a task's user (``PVE/API2/Tasks.pm`` ``$convert_token_task``,
    ``PVE/API2/Cluster.pm`` ``tasks``): only a whole ``user@realm!token`` is split
    (``PVE::AccessControl::pve_verify_tokenid`` then ``split_tokenid``); anything else is the user as it is.
    """
    m = _TOKEN_FULL_RE.fullmatch(authid)
    return (m.group(1), m.group(2)) if m else (authid, None)


@dataclass(frozen=True, slots=True)
class Upid:
    """A parsed UPID ``UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:``.

    ``id`` may be empty (multi-guest vzdump, aptupdate, ...); ``user`` may carry a token
    (``root@pam!mcp``) — see :attr:`userid` and :attr:`tokenid`.
    """

    upid: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str

    @classmethod
    def encode(cls, node: str, pid: int, pstart: int, starttime: int, type: str, id: str, user: str) -> Upid:
        """The UPID of these fields, written as pve-common's ``PVE::UPID::encode`` (formerly
        ``PVE::Tools::upid_encode``) writes it: upper-case hex, 8 digits at least, the trailing colon.

        The text is parsed back, so a record never holds a UPID that PVE's own decoder would refuse
        (a node name with a dot, a ``:`` in the id, a pid beyond 32 bits): ``ValueError`` instead.
        """
        return parse_upid(f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type}:{id}:{user}:")

    @property
    def userid(self) -> str:
        """The user part of :attr:`user` (``root@pam`` for ``root@pam!mcp``); see :func:`split_tokenid`."""
        return split_tokenid(self.user)[0]

    @property
    def tokenid(self) -> str | None:
        """The token name when the task was started with an API token, else ``None``."""
        return split_tokenid(self.user)[1]

    def __str__(self) -> str:
        return self.upid


def parse_upid(text: str) -> Upid:
    """Parse a UPID or raise ``ValueError`` (the text is shown: a UPID holds no secret)."""
    if not isinstance(text, str):
        raise ValueError(f"not a UPID: expected a string, got {type(text).__name__}")
    m = UPID_RE.fullmatch(text)  # fullmatch: `$` alone would accept a trailing newline
    if m is None:
        shown = text if len(text) <= 120 else text[:117] + "..."
        raise ValueError(f"not a valid UPID: {shown!r}")
    return Upid(
        upid=text,
        node=m.group(1),
        pid=int(m.group(3), 16),
        pstart=int(m.group(4), 16),
        starttime=int(m.group(5), 16),
        type=m.group(6),
        id=m.group(7),
        user=m.group(8),
    )


def is_upid(value: object) -> bool:
    """True if ``value`` is a string that parses as a UPID (for "did this call start a task?")."""
    return isinstance(value, str) and UPID_RE.fullmatch(value) is not None
