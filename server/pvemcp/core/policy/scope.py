"""Scope: which nodes and guests this server may act on at all, whatever the risk policy says.

An operator gives an agent a slice of a cluster: some nodes, some VMID ranges, some pools, guests
with some tags ("only guests tagged ``agent``"). Every dimension is optional (``None`` = no
restriction); a guest is in scope only if it satisfies **every** configured dimension. An empty set
or range list is a restriction that nothing satisfies (fail closed), not "unrestricted".

Within a dimension: the guest's node must be one of ``nodes``; its VMID inside one of the inclusive
``vmid_ranges``; its pool one of ``pools`` (a guest in no pool fails); it must carry at least one
of ``tags`` (compared case-insensitively, as Proxmox does).

Scope is checked against *facts* about a guest (a :class:`~pvemcp.core.pve.resolve.GuestRef`, one entry of
``GET /cluster/resources``), never against what a caller claims, and on every target of a call:
existing guests, new guests (``newid`` of a clone, the VMID of a create/restore) and nodes
(``target`` of a clone or migration). A batch is refused whole when any target is out of scope,
before any request is sent (``policy/targets.py`` ``check_call`` returns every violation so the refusal
can name them).
Messages say which rule blocked which guest, so the model can correct course.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pvemcp.dialect.tags import parse_tags

if TYPE_CHECKING:
    from pvemcp.core.pve.resolve import GuestRef

__all__ = [
    "Scope",
    "ScopeViolation",
    "check_new_guest",
    "check_new_vmid",
    "check_node",
    "check_target",
    "check_unlisted_guest",
    "parse_tags",
]


def _fmt_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges) or "none"


def _fmt_set(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"


@dataclass(frozen=True)
class Scope:
    """The slice of the cluster this server may touch; ``None`` in a dimension = unrestricted."""

    nodes: frozenset[str] | None = None
    vmid_ranges: tuple[tuple[int, int], ...] | None = None
    pools: frozenset[str] | None = None
    tags: frozenset[str] | None = None

    def __post_init__(self) -> None:
        # Accept any iterables from callers but store immutable, normalized values.
        if self.nodes is not None:
            object.__setattr__(self, "nodes", frozenset(str(n) for n in self.nodes))
        if self.pools is not None:
            object.__setattr__(self, "pools", frozenset(str(p) for p in self.pools))
        if self.tags is not None:
            object.__setattr__(self, "tags", parse_tags(self.tags))
        if self.vmid_ranges is not None:
            ranges: list[tuple[int, int]] = []
            for item in self.vmid_ranges:
                lo, hi = item
                if isinstance(lo, bool) or isinstance(hi, bool) or not isinstance(lo, int) or not isinstance(hi, int):
                    raise ValueError(f"VMID range bounds must be integers, got {item!r}")
                if lo > hi:
                    raise ValueError(f"VMID range {lo}-{hi} is empty (start is above end)")
                ranges.append((lo, hi))
            object.__setattr__(self, "vmid_ranges", tuple(sorted(ranges)))

    @property
    def unrestricted(self) -> bool:
        """True when no dimension is configured: every check passes without needing facts."""
        return self.nodes is None and self.vmid_ranges is None and self.pools is None and self.tags is None

    def allows_vmid(self, vmid: int) -> bool:
        """Is ``vmid`` inside an allowed range (or are VMIDs unrestricted)?"""
        return self.vmid_ranges is None or any(lo <= vmid <= hi for lo, hi in self.vmid_ranges)

    def allows_node(self, node: str | None) -> bool:
        """Is ``node`` allowed? An unknown node (``None``) is not, when nodes are restricted."""
        return self.nodes is None or (node is not None and node in self.nodes)

    def describe(self) -> str:
        """One line for previews and errors, e.g. ``nodes pve1; VMIDs 100-199; tags agent``."""
        parts = []
        if self.nodes is not None:
            parts.append("nodes " + _fmt_set(self.nodes))
        if self.vmid_ranges is not None:
            parts.append("VMIDs " + _fmt_ranges(self.vmid_ranges))
        if self.pools is not None:
            parts.append("pools " + _fmt_set(self.pools))
        if self.tags is not None:
            parts.append("tags " + _fmt_set(self.tags))
        return "; ".join(parts) or "unrestricted"


@dataclass(frozen=True)
class ScopeViolation:
    """One target outside the scope: who, which rules blocked it, and a message for the model."""

    subject: str
    rules: tuple[str, ...]
    message: str
    vmid: int | None = None
    node: str | None = None

    def __str__(self) -> str:
        return self.message


def _violation(subject: str, failures: list[tuple[str, str]], vmid: int | None, node: str | None) -> ScopeViolation:
    rules = tuple(rule for rule, _ in failures)
    message = f"{subject} is out of scope: " + "; ".join(text for _, text in failures) + "."
    return ScopeViolation(subject=subject, rules=rules, message=message, vmid=vmid, node=node)


def _node_failure(scope: Scope, node: str | None) -> tuple[str, str] | None:
    if scope.allows_node(node):
        return None
    assert scope.nodes is not None
    if node is None:
        return ("node", f"its node is unknown and nodes are restricted to {_fmt_set(scope.nodes)}")
    return ("node", f"node {node} is not an allowed node ({_fmt_set(scope.nodes)})")


def _vmid_failure(scope: Scope, vmid: int) -> tuple[str, str] | None:
    if scope.allows_vmid(vmid):
        return None
    assert scope.vmid_ranges is not None
    return ("vmid", f"VMID {vmid} is outside the allowed ranges ({_fmt_ranges(scope.vmid_ranges)})")


def _pool_failure(scope: Scope, pool: str | None) -> tuple[str, str] | None:
    if scope.pools is None or (pool is not None and pool in scope.pools):
        return None
    if pool is None:
        return ("pool", f"it is in no pool and must be in one of {_fmt_set(scope.pools)}")
    return ("pool", f"pool {pool} is not an allowed pool ({_fmt_set(scope.pools)})")


def _tag_failure(scope: Scope, tags: frozenset[str]) -> tuple[str, str] | None:
    if scope.tags is None or tags & scope.tags:
        return None
    have = f" (it has {_fmt_set(tags)})" if tags else " (it has no tags)"
    return ("tag", f"it has none of the allowed tags {_fmt_set(scope.tags)}{have}")


def _guest_failures(
    scope: Scope, vmid: int, node: str | None, pool: str | None, tags: frozenset[str]
) -> list[tuple[str, str]]:
    checks = (
        _node_failure(scope, node),
        _vmid_failure(scope, vmid),
        _pool_failure(scope, pool),
        _tag_failure(scope, tags),
    )
    return [f for f in checks if f is not None]


def check_target(scope: Scope, guest: GuestRef) -> ScopeViolation | None:
    """Check an existing guest against every configured dimension; ``None`` if in scope."""
    failures = _guest_failures(scope, guest.vmid, guest.node, guest.pool, guest.tag_set)
    return _violation(guest.label(), failures, guest.vmid, guest.node) if failures else None


def check_unlisted_guest(scope: Scope, vmid: int) -> ScopeViolation | None:
    """Check a guest known only by its VMID (not in the guest list) against the VMID ranges alone."""
    failure = _vmid_failure(scope, vmid)
    return _violation(f"guest {vmid}", [failure], vmid, None) if failure else None


def check_new_vmid(scope: Scope, vmid: int) -> ScopeViolation | None:
    """Check the VMID a new guest would get (``newid`` of a clone, the VMID of a create/restore)."""
    failure = _vmid_failure(scope, vmid)
    return _violation(f"new guest {vmid}", [failure], vmid, None) if failure else None


def check_node(scope: Scope, node: str | None) -> ScopeViolation | None:
    """Check a node that a call acts on or sends a guest to (``target`` of a clone or migration)."""
    failure = _node_failure(scope, node)
    return _violation(f"node {node}" if node else "the target node", [failure], None, node) if failure else None


def check_new_guest(
    scope: Scope,
    vmid: int,
    *,
    node: str | None = None,
    pool: str | None = None,
    tags: Iterable[str] | str | None = None,
) -> ScopeViolation | None:
    """Check that a guest about to be created lands *inside* the scope.

    Why all dimensions and not only the VMID: a guest born outside the scope could not be managed
    (or removed) by this server afterwards, and creating it would be a way to act outside the slice
    the operator granted. So with pools restricted a create/clone must name an allowed ``pool``,
    with tags restricted the new guest must carry an allowed tag (a clone inherits its source's
    tags: pass those), and its node (``target`` or the path's node) must be allowed.
    """
    failures = _guest_failures(scope, vmid, node, pool, parse_tags(tags))
    subject = f"new guest {vmid}" + (f" on node {node}" if node else "")
    return _violation(subject, failures, vmid, node) if failures else None
