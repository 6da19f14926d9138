"""The guest index: one ``/cluster/resources`` answer serving guest resolution and ``guest_list``.

Models know guests by vmid; the API wants ``/nodes/{node}/{qemu|lxc}/{vmid}``.  One
``GET /cluster/resources?type=vm`` answers for every guest, so it is cached briefly (default 5 s) to
serve a burst of tool calls with one request, and the cache is dropped whenever *we* mutate the cluster
(the client's ``mutation_epoch`` moves), so our own create/migrate/delete is visible at once.

The index keeps the raw entries (``guest_list`` shows any field of them) sorted by vmid, and builds
:class:`GuestRef` objects only when asked: a 50,000-guest cluster costs one list of its entries, not
a second copy per consumer. Fetches are single-flight, failures included: calls that waited for a
fetch that failed get its error instead of sending the same request again (a hanging cluster then
costs the first call one timeout, not one per waiting call).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio

from pvemcp.core.pve.errors import PveError
from pvemcp.dialect.compact import CompactObject, compact_object_hook

if TYPE_CHECKING:
    from pvemcp.core.pve.client import PveClient

from pvemcp.dialect.tags import tag_list

RESOURCES_PATH = "/cluster/resources"
INDEX_TTL_S = 5.0  # how long one /cluster/resources answer serves (unless we mutate the cluster)
_VMID_RE = re.compile(r"^[1-9][0-9]{2,8}$")  # PVE's pve-vmid format


@dataclass(frozen=True, slots=True)
class GuestRef:
    """Where a guest lives and what it is, as ``/cluster/resources`` reports it."""

    vmid: int
    node: str
    type: Literal["qemu", "lxc"]
    name: str | None
    status: str
    template: bool
    tags: tuple[str, ...]
    pool: str | None
    lock: str | None = None

    @property
    def tag_set(self) -> frozenset[str]:
        """The tags as a set, for scope tests (they are already case-folded: ``dialect/tags.py``)."""
        return frozenset(self.tags)

    def label(self) -> str:
        """Human name used in messages: ``guest 105 (web1) on node pve2``."""
        text = f"guest {self.vmid}"
        if self.name:
            text += f" ({self.name})"
        return f"{text} on node {self.node}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view for tool results (absent optional fields omitted)."""
        out: dict[str, Any] = {
            "vmid": self.vmid,
            "node": self.node,
            "type": self.type,
            "name": self.name,
            "status": self.status,
        }
        if self.template:
            out["template"] = True
        if self.tags:
            out["tags"] = list(self.tags)
        if self.pool:
            out["pool"] = self.pool
        if self.lock:
            out["lock"] = self.lock
        return out


def check_vmid(vmid: object) -> int:
    """Validate a vmid (int or digit string, 100..999999999) or raise a params PveError."""
    text = str(vmid) if isinstance(vmid, (int, str)) and not isinstance(vmid, bool) else ""
    if not _VMID_RE.match(text.strip()):
        raise PveError(
            kind="params",
            message=f"invalid vmid {vmid!r}",
            errors={"vmid": "must be an integer between 100 and 999999999"},
            hint="pass the numeric VM/CT id.",
        )
    return int(text)


def guest_from_resource(entry: Mapping[str, Any]) -> GuestRef | None:
    """One ``/cluster/resources`` entry as a GuestRef, or ``None`` if it is not a guest."""
    kind = entry.get("type")
    if kind not in ("qemu", "lxc"):
        return None
    try:
        vmid = int(entry["vmid"])
        node = str(entry["node"])
    except (KeyError, TypeError, ValueError):
        return None
    tags = tag_list(entry.get("tags"))
    name = entry.get("name")
    pool = entry.get("pool")
    lock = entry.get("lock")
    return GuestRef(
        vmid=vmid,
        node=node,
        type="qemu" if kind == "qemu" else "lxc",
        name=str(name) if name is not None else None,
        status=str(entry.get("status") or "unknown"),
        template=bool(int(entry.get("template") or 0)),
        tags=tags,
        pool=str(pool) if pool else None,
        lock=str(lock) if lock else None,
    )


class GuestResolver:
    """Short-lived, mutation-aware index of the cluster's guests (one per client, shared by every tool)."""

    def __init__(self, client: PveClient, *, ttl_s: float = INDEX_TTL_S, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._ttl = ttl_s
        self._clock = clock
        self._lock = anyio.Lock()
        self._entries: list[Mapping[str, Any]] | None = None  # guests only, sorted by vmid
        self._by_vmid: dict[int, Mapping[str, Any]] = {}
        self._refs: list[GuestRef] | None = None
        self._fetched_at = 0.0
        self._epoch = -1
        self._attempts = 0
        self._failure: tuple[int, PveError] | None = None
        self.fetches = 0  # number of successful /cluster/resources requests (observability, tests)

    def invalidate(self) -> None:
        """Forget the cached list (the next lookup fetches it again)."""
        self._entries = None
        self._refs = None

    def _fresh(self) -> bool:
        return (
            self._entries is not None
            and self._epoch == self._client.mutation_epoch
            and self._clock() - self._fetched_at < self._ttl
        )

    async def _load(self, *, newer_than: int | None = None) -> bool:
        """Make the index current; True if this call fetched it (single-flight under a lock).

        ``newer_than``: only accept a cached list from a fetch numbered above this (a re-check after a
        miss; concurrent re-checks then share one fetch). A caller that waited while the fetch in
        flight failed gets that failure.
        """
        waited_for = self._attempts
        async with self._lock:
            if self._failure is not None and self._failure[0] > waited_for:
                raise self._failure[1]
            if self._fresh() and (newer_than is None or self.fetches > newer_than):
                return False
            epoch = self._client.mutation_epoch
            self._attempts += 1
            # Drop the stale copy first: at 50,000 guests two parsed copies at once would double the peak.
            self.invalidate()
            self._by_vmid = {}
            try:
                # each entry kept as a compact read-only mapping, built while parsing (dialect/compact.py)
                data = await self._client.get(RESOURCES_PATH, params={"type": "vm"}, object_hook=compact_object_hook())
            except PveError as exc:
                self._failure = (self._attempts, exc)
                raise
            self._failure = None
            self.fetches += 1
            by_vmid: dict[int, Mapping[str, Any]] = {}
            for entry in data if isinstance(data, list) else []:
                # the concrete class, not Mapping: the ABC check would cost more than the rest of the loop
                if isinstance(entry, CompactObject) and entry.get("type") in ("qemu", "lxc"):
                    try:
                        by_vmid[int(entry["vmid"])] = entry
                    except (KeyError, TypeError, ValueError):
                        continue
            self._by_vmid = by_vmid
            self._entries = [by_vmid[k] for k in sorted(by_vmid)]
            self._refs = None
            self._fetched_at = self._clock()
            self._epoch = epoch
            return True

    async def entries(self) -> list[Mapping[str, Any]]:
        """The raw ``/cluster/resources`` entries of every visible guest, sorted by vmid (do not mutate)."""
        await self._load()
        assert self._entries is not None
        return self._entries

    async def list(self) -> list[GuestRef]:
        """All visible guests, sorted by vmid."""
        await self._load()
        if self._refs is None:
            assert self._entries is not None
            self._refs = [ref for ref in map(guest_from_resource, self._entries) if ref is not None]
        return self._refs[:]

    async def resolve(self, vmid: int | str) -> GuestRef:
        """The guest with this vmid; a miss on a cached list is re-checked once against a fresh one."""
        wanted = check_vmid(vmid)
        fetched = await self._load()
        if wanted not in self._by_vmid and not fetched:
            await self._load(newer_than=self.fetches)
        entry = self._by_vmid.get(wanted)
        ref = guest_from_resource(entry) if entry is not None else None
        if ref is None:
            raise PveError(
                kind="not_found_or_state",
                message=f"no guest with vmid {wanted} in the cluster",
                hint="list the guests to find the right vmid (or it is not visible to these credentials).",
                method="GET",
                path=RESOURCES_PATH,
            )
        return ref


def guest_by_name(guests: list[GuestRef], name: str) -> GuestRef:
    """The one guest called ``name`` (exact match), or a params PveError naming every candidate.

    PVE does not keep guest names unique (a clone may repeat one), so a name addresses a guest only
    when exactly one guest has it; otherwise the caller must pick a vmid.
    """
    matches = [g for g in guests if g.name == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        near = sorted(g.name for g in guests if g.name and name.lower() in g.name.lower())
        also = f"; similar names: {', '.join(near[:10])}" if near else ""
        raise PveError(
            kind="params",
            message=f"no guest is named {name!r}{also}",
            hint="list the guests (guest_list) to find its vmid or exact name.",
        )
    listed = ", ".join(f"{g.vmid} on {g.node} ({g.status})" for g in matches)
    raise PveError(
        kind="params",
        message=f"{len(matches)} guests are named {name!r}: {listed}",
        hint="pass the vmid of the one you mean.",
    )
