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

    @property
    def userid(self) -> str:
        """The user part of :attr:`user` (``root@pam`` for ``root@pam!mcp``)."""
        return self.user.split("!", 1)[0]

    @property
    def tokenid(self) -> str | None:
        """The token name when the task was started with an API token, else ``None``."""
        return self.user.split("!", 1)[1] if "!" in self.user else None

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


def format_upid(node: str, pid: int, pstart: int, starttime: int, type: str, id: str, user: str) -> str:
    """``UPID:node:PID8:PSTART8:STARTTIME8:type:id:user:`` with upper-case hex and the trailing colon, as
    pve-common's ``PVE::Tools::upid_encode`` writes it (the inverse of :func:`parse_upid`)."""
    return f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type}:{id}:{user}:"
