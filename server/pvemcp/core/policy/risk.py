"""Risk classes of Proxmox VE API operations: ``read``, ``write`` or ``destructive``.

Curated tools declare their risk in ``tools.yaml``; the generic API tool has no such declaration,
so its risk is *derived* here from the operation alone, for any of the API's operations:

* ``GET`` is ``read``.
* ``DELETE`` is ``destructive`` (it removes something: a guest, a volume, a user, a rule ...).
* ``POST``/``PUT`` on a curated list of dangerous templates is ``destructive``; any other
  ``POST``/``PUT`` is ``write``.
* Any other method is ``destructive`` (fail closed: we do not know what it does).

"Destructive" here means one of: data or state is lost or cannot be restored by a later API call
(hard stop, reset, rollback, wipe, template conversion, disk growth); guests or the host become
unavailable beyond one graceful, reversible step (node reboot, service restart, network apply,
node- or cluster-wide bulk stops); privileges or the security perimeter change (users, tokens, ACLs,
pools, firewall, certificates, package sources); or control leaves the policy's sight (host shells,
guest consoles, guest-agent exec, QEMU monitor, HA manager actions, migration tunnels).

Decisions worth knowing (see ``DESTRUCTIVE_RULES`` for the full list with reasons):

* ``status/shutdown`` and ``status/reboot`` are ``write``: the guest OS shuts down cleanly and a
  ``start`` undoes it. ``shutdown`` with ``forceStop`` becomes ``destructive`` (it ends in a hard stop).
  ``status/stop`` and ``status/reset`` are ``destructive`` (unsaved data in the guest is lost).
* Every migration (``migrate``, ``remote_migrate``, HA migrate/relocate, ``migrateall``, bulk migrate)
  is ``destructive``: the guest leaves its node, local disks are copied and the sources removed, and
  containers are restarted.
* ``resize`` is ``destructive``: Proxmox can only grow disks, so it cannot be undone.

Some operations are only dangerous with certain arguments (restore with ``force`` overwrites a
guest, a config update with ``delete=unused0`` destroys a volume, ``move_disk`` with ``delete``
removes the source ...). For those:

* :func:`classify_operation` returns the **worst case** over all arguments ("this operation *may*
  be destructive"), which is also what MCP's ``destructiveHint`` means; the returned
  :class:`Classification` says ``conditional=True``.
* :func:`classify_call` looks at the actual arguments and returns the risk of *this* call. It is
  never above :func:`classify_operation` for the same operation.

Classification takes the **spec's path template** (``/nodes/{node}/qemu/{vmid}/status/stop``), as
found by the spec matcher, which owns canonicalization of raw request paths. As defence in depth the
input is also lightly normalized here (percent-decoding, ``//``, ``.``/``..``, trailing ``/``, an
``/api2/json`` prefix, case), which can only make more rules match, never fewer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

# The risk type itself is in risk_class (light, for the catalog); re-exported: classification is its home.
from pvemcp.core.policy.risk_class import Risk, max_risk, parse_risk
from pvemcp.dialect.propstring import pve_true

__all__ = [
    "CONDITIONAL_RULES",
    "DESTRUCTIVE_RULES",
    "Classification",
    "Risk",
    "classify_call",
    "classify_operation",
    "explain_call",
    "explain_operation",
    "max_risk",
    "normalize_path",
    "parse_risk",
    "reach_of",
]


@dataclass(frozen=True)
class Classification:
    """A risk with the reason behind it, for previews, dry runs and the audit ledger.

    ``conditional`` is true when the operation's risk depends on its arguments: the operation's
    classification is then the worst case and a concrete call may be lower.
    """

    risk: Risk
    reason: str
    conditional: bool = False


# --------------------------------------------------------------------------------------------
# Path patterns: segments separated by "/"; "*" matches one segment (a "{param}" or a value),
# "**" any number of segments (including none), "a|b" one of several literal segments.


def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for seg in pattern.strip("/").split("/"):
        if seg == "**":
            parts.append("(?:/[^/]+)*")
        elif seg == "*":
            parts.append("/[^/]+")
        else:
            parts.append("/(?:" + "|".join(re.escape(alt) for alt in seg.split("|")) + ")")
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


_API_PREFIXES = {"json", "extjs", "html", "spiceconfig"}


def normalize_path(path: str) -> str:
    """Lightly normalize a path for matching (see the module docstring: defence in depth only).

    Drops a query string, percent-decodes (repeatedly, so ``%252F`` cannot hide a ``/``), collapses
    empty and ``.`` segments, resolves ``..``, and strips an ``/api2/<format>`` prefix.
    """
    p = path.strip().split("?", 1)[0].split("#", 1)[0]
    for _ in range(4):
        decoded = unquote(p)
        if decoded == p:
            break
        p = decoded
    segs: list[str] = []
    for seg in p.replace("\\", "/").split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs:
                segs.pop()
            continue
        segs.append(seg)
    if len(segs) >= 2 and segs[0].lower() == "api2" and segs[1].lower() in _API_PREFIXES:
        segs = segs[2:]
    return "/" + "/".join(segs)


# --------------------------------------------------------------------------------------------
# Argument helpers. Keys are compared case-insensitively with "_" and "-" unified, and values
# are truthy unless they clearly say "false": both choices can only make a call *more* risky.


def _norm_key(key: str) -> str:
    return key.lower().replace("_", "-")


def _get(args: Mapping[str, Any], *names: str) -> Any:
    wanted = {_norm_key(n) for n in names}
    for key, value in args.items():
        if isinstance(key, str) and _norm_key(key) in wanted and value is not None:
            return value
    return None


def _explicitly_false(value: Any) -> bool:
    return value is not None and not pve_true(value)


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _listish(value: Any) -> list[str]:
    """Items of a PVE list argument, given as a string ("a,b c;d") or a JSON array."""
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v).strip() for v in value if str(v).strip()]
    return [s for s in re.split(r"[,;\s]+", str(value)) if s]


#: Config keys holding volumes. qemu: ide0 sata0 scsi0 virtio0 efidisk0 tpmstate0 unused0; lxc: rootfs mp0 unused0.
DISK_KEY = re.compile(r"^(?:(?:ide|sata|scsi|virtio|efidisk|tpmstate|unused|mp)\d+|rootfs)$", re.IGNORECASE)

Predicate = Callable[[Mapping[str, Any]], list[str]]


def _host_hooks(args: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if _present(_get(args, "hookscript")):
        out.append("sets a hookscript, which runs as root on the host")
    if _present(_get(args, "args")):
        out.append("passes raw arguments to kvm on the host")
    return out


def _guest_create(args: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if pve_true(_get(args, "force")):
        out.append("overwrites an existing guest with the same VMID (force)")
    return out + _host_hooks(args)


def _config_update(args: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    disks = [k for k in _listish(_get(args, "delete")) if DISK_KEY.match(k)]
    if disks:
        out.append(
            "removes " + ", ".join(disks) + " from the configuration (an unused volume removed this way is destroyed)"
        )
    if pve_true(_get(args, "force")):
        out.append("physically removes disks (force)")
    if pve_true(_get(args, "template")):
        out.append("converts the guest into a template (irreversible)")
    return out + _host_hooks(args)


def _move_volume(args: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if pve_true(_get(args, "delete")):
        out.append("deletes the source volume after copying (delete)")
    if _present(_get(args, "target-vmid")):
        out.append("takes the volume away from this guest and gives it to another (target-vmid)")
    return out


def _backup_pruning(args: Mapping[str, Any]) -> list[str]:
    remove = _get(args, "remove")
    if pve_true(remove):
        return ["prunes older backups (remove)"]
    if not _explicitly_false(remove) and (_present(_get(args, "prune-backups")) or _present(_get(args, "maxfiles"))):
        return ["prunes older backups with a caller-chosen retention (prune-backups)"]
    return []


def _vzdump(args: Mapping[str, Any]) -> list[str]:
    out = _backup_pruning(args)
    if pve_true(_get(args, "stop")):
        out.append("aborts the backup jobs running on this node (stop)")
    return out


def _shutdown(args: Mapping[str, Any]) -> list[str]:
    if pve_true(_get(args, "forceStop", "force-stop")):
        return ["hard-stops the guest if it has not shut down in time (forceStop); unsaved data is lost"]
    return []


@dataclass(frozen=True)
class _Rule:
    methods: frozenset[str]
    pattern: str
    reason: str
    regex: re.Pattern[str]
    predicate: Predicate | None = None

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.regex.match(path) is not None


def _rule(methods: str, pattern: str, reason: str, predicate: Predicate | None = None) -> _Rule:
    return _Rule(frozenset(methods.split("|")), pattern, reason, _compile(pattern), predicate)


_G = "qemu|lxc"

#: POST/PUT templates that are always destructive, with the reason shown to operators.
DESTRUCTIVE_RULES: tuple[_Rule, ...] = (
    # --- guests: power, state, identity
    _rule("POST", f"/nodes/*/{_G}/*/status/stop", "stops the guest immediately; unsaved data in the guest is lost"),
    _rule(
        "POST", "/nodes/*/qemu/*/status/reset", "resets the VM like a power cycle; unsaved data in the guest is lost"
    ),
    _rule(
        "POST",
        f"/nodes/*/{_G}/*/snapshot/*/rollback",
        "replaces the guest's current state with the snapshot; everything since the snapshot is lost",
    ),
    _rule("POST", f"/nodes/*/{_G}/*/template", "converts the guest into a template (irreversible)"),
    _rule(
        "POST",
        f"/nodes/*/{_G}/*/migrate",
        "moves the guest to another node, removing it (and its local disks) from this one; containers restart",
    ),
    _rule(
        "POST",
        f"/nodes/*/{_G}/*/remote_migrate",
        "moves the guest to another cluster; the source is stopped or deleted",
    ),
    _rule("PUT", f"/nodes/*/{_G}/*/resize", "grows a disk; disks cannot be shrunk again (irreversible)"),
    _rule("PUT", "/nodes/*/qemu/*/unlink", "deletes disk images"),
    _rule("POST", f"/nodes/*/{_G}/*/mtunnel", "internal migration tunnel that writes guest disks"),
    # --- control outside the policy's sight
    _rule("POST", "/nodes/*/qemu/*/monitor", "runs arbitrary QEMU monitor commands"),
    _rule("POST", "/nodes/*/qemu/*/agent/exec", "runs an arbitrary command inside the guest"),
    _rule("POST", "/nodes/*/qemu/*/agent/file-write", "writes a file inside the guest"),
    _rule("POST", "/nodes/*/qemu/*/agent/set-user-password", "changes the password of a user inside the guest"),
    _rule("PUT", "/nodes/*/qemu/*/sendkey", "types keystrokes into the guest's console"),
    _rule(
        "POST",
        f"/nodes/*/{_G}/*/vncproxy|termproxy|spiceproxy",
        "opens an interactive guest console, outside the policy and the audit ledger",
    ),
    _rule("POST", "/nodes/*/vncshell|termproxy|spiceshell", "opens a root shell on the host"),
    _rule("POST", "/nodes/*/execute", "runs commands on the host"),
    # --- node and cluster availability
    _rule("POST", "/nodes/*/status", "reboots or shuts down the node and every guest on it"),
    _rule("POST", "/nodes/*/stopall|suspendall|migrateall", "stops, suspends or migrates every guest on the node"),
    _rule(
        "POST",
        "/cluster/bulk-action/guest/shutdown|suspend|migrate",
        "shuts down, suspends or migrates guests across the cluster",
    ),
    _rule(
        "POST",
        "/nodes/*/services/*/stop|restart|reload",
        "interrupts a host service (API, cluster, storage or network daemon)",
    ),
    _rule("PUT", "/nodes/*/network", "applies the pending network configuration, which can cut the node off"),
    _rule("POST", "/nodes/*/hosts", "rewrites /etc/hosts, which cluster communication depends on"),
    _rule("PUT", "/cluster/sdn", "applies the SDN configuration cluster-wide (network reload on every node)"),
    _rule("POST", "/cluster/sdn/rollback", "discards the pending SDN changes"),
    # --- disks and storage
    _rule("POST", "/nodes/*/disks/lvm|lvmthin|directory|zfs|initgpt", "formats a disk; the data on it is lost"),
    _rule("PUT", "/nodes/*/disks/wipedisk", "wipes a disk or partition"),
    _rule("POST", "/nodes/*/ceph/osd", "creates a Ceph OSD, destroying the data on its disk"),
    _rule("POST", "/nodes/*/ceph/osd/*/out", "takes a Ceph OSD out; data is rebalanced and redundancy drops"),
    _rule("POST", "/nodes/*/ceph/stop|restart", "stops or restarts Ceph services (storage outage)"),
    _rule("PUT", "/nodes/*/ceph/pool/*", "changes Ceph pool settings such as size, which can reduce redundancy"),
    _rule("PUT", "/cluster/ceph/flags/**", "sets Ceph flags (e.g. 'pause' halts all I/O)"),
    # --- privileges and security perimeter
    _rule(
        "POST|PUT", "/access/**", "changes users, tokens, groups, roles, ACLs, realms, TFA or passwords (privileges)"
    ),
    _rule("POST|PUT", "/cluster/jobs/realm-sync/**", "changes how users and groups are synchronised (privileges)"),
    _rule("PUT", "/pools/**", "changes pool membership, which grants the pool's permissions on its members"),
    _rule("POST|PUT", "/**/firewall/**", "changes firewall rules or options (can expose guests or lock out access)"),
    _rule("POST|PUT", "/nodes/*/certificates/**", "replaces the node's TLS certificate or key"),
    _rule("POST|PUT", "/nodes/*/apt/repositories", "changes where the host installs software from"),
    # --- cluster-wide configuration
    _rule("POST", "/cluster/config/**", "creates, joins or extends the cluster (cluster membership)"),
    _rule("PUT", "/cluster/options", "changes datacenter-wide options"),
    _rule(
        "POST|PUT",
        "/cluster/ha/**",
        "changes HA resources or rules; the HA manager then starts, stops or moves guests on its own",
    ),
)

#: POST/PUT templates whose risk depends on the arguments; ``reason`` describes the worst case.
CONDITIONAL_RULES: tuple[_Rule, ...] = (
    _rule(
        "POST", "/nodes/*/qemu", "may overwrite an existing VM (restore with force) or set host hooks", _guest_create
    ),
    _rule(
        "POST",
        "/nodes/*/lxc",
        "may overwrite an existing container (restore with force) or set host hooks",
        _guest_create,
    ),
    _rule(
        "POST|PUT",
        "/nodes/*/qemu/*/config",
        "may destroy disks (delete/force), convert to a template or set host hooks",
        _config_update,
    ),
    _rule(
        "PUT",
        "/nodes/*/lxc/*/config",
        "may destroy volumes (delete), convert to a template or set host hooks",
        _config_update,
    ),
    _rule(
        "POST",
        "/nodes/*/qemu/*/move_disk",
        "may delete the source disk or reassign it to another guest",
        _move_volume,
    ),
    _rule(
        "POST",
        "/nodes/*/lxc/*/move_volume",
        "may delete the source volume or reassign it to another guest",
        _move_volume,
    ),
    _rule("POST", "/nodes/*/vzdump", "may prune older backups or abort running backup jobs", _vzdump),
    _rule("POST|PUT", "/cluster/backup/**", "may schedule pruning of older backups", _backup_pruning),
    _rule("POST", f"/nodes/*/{_G}/*/status/shutdown", "may end in a hard stop (forceStop)", _shutdown),
)

# --------------------------------------------------------------------------------------------
# Reach: mutating operations that act on a whole node or the whole cluster without naming a guest.
# Scope (pvemcp.core.policy.targets) turns them into "every guest on the node" / "the cluster":
# a node-wide operation runs only when its node is allowed and every guest on it is in scope; a
# cluster-wide one only when nodes are unrestricted and every guest of the cluster is in scope.

_M = "POST|PUT|DELETE"

#: Operations that affect every guest on ``{node}`` (its host, disks, services, network, software).
NODE_WIDE_RULES: tuple[_Rule, ...] = (
    _rule("POST", "/nodes/*/status", "reboots or shuts down the node"),
    _rule("POST", "/nodes/*/execute", "runs commands on the host"),
    _rule("POST", "/nodes/*/vncshell|termproxy|spiceshell", "opens a root shell on the host"),
    _rule(_M, "/nodes/*/disks/**", "formats, wipes or initializes the node's disks"),
    _rule(_M, "/nodes/*/services/**", "starts, stops or restarts host services"),
    _rule(_M, "/nodes/*/network/**", "changes or applies the node's network configuration"),
    _rule(_M, "/nodes/*/network", "applies or reverts the node's network configuration"),
    _rule(_M, "/nodes/*/apt/**", "changes the host's packages or package sources"),
    _rule(_M, "/nodes/*/certificates/**", "replaces the node's TLS certificates"),
    _rule(_M, "/nodes/*/firewall/**", "changes the node's firewall"),
    _rule(_M, "/nodes/*/hosts|dns|time", "changes the node's name resolution or clock"),
    _rule(_M, "/nodes/*/sdn/**", "changes the node's software-defined network"),
)

#: Operations that affect the whole cluster: shared storage, Ceph, cluster options, privileges.
CLUSTER_WIDE_RULES: tuple[_Rule, ...] = (
    _rule(_M, "/nodes/*/ceph/**", "changes Ceph, the storage every node's guests may live on"),
    _rule(_M, "/cluster/ceph/**", "changes Ceph, the storage every node's guests may live on"),
    _rule(
        _M,
        "/cluster/options|sdn|config|firewall|acme|metrics|notifications|mapping|jobs/**",
        "changes cluster-wide configuration",
    ),
    _rule(
        _M,
        "/cluster/options|sdn|config|firewall|acme|metrics|notifications|mapping|jobs",
        "changes cluster-wide configuration",
    ),
    _rule(_M, "/cluster/ha/groups|rules|status/**", "changes how HA moves guests across the cluster"),
    _rule(_M, "/storage/**", "changes a storage definition shared by the cluster"),
    _rule(_M, "/storage", "adds a storage definition shared by the cluster"),
    _rule(_M, "/access/**", "changes users, tokens, roles or ACLs, which reach beyond any scope"),
    _rule("POST|DELETE", "/pools/**", "creates or removes a pool (and its permissions)"),
    _rule("POST|DELETE", "/pools", "creates or removes a pool (and its permissions)"),
)


def reach_of(method: str, template: str) -> tuple[str, str] | None:
    """``("node", reason)`` or ``("cluster", reason)`` for a node- or cluster-wide operation, else None.

    Reads never reach further than what they return (read scope filters and refuses those).
    """
    m = method.strip().upper()
    if m == "GET":
        return None
    path = normalize_path(template)
    for rule in CLUSTER_WIDE_RULES:
        if rule.matches(m, path):
            return "cluster", rule.reason
    for rule in NODE_WIDE_RULES:
        if rule.matches(m, path):
            return "node", rule.reason
    return None


_KNOWN_MUTATING = {"POST", "PUT"}


def _base(method: str, template: str) -> tuple[str, str, Classification | None]:
    m = method.strip().upper()
    path = normalize_path(template)
    if m == "GET":
        return m, path, Classification(Risk.READ, "reads only")
    if m == "DELETE":
        return m, path, Classification(Risk.DESTRUCTIVE, "deletes " + path)
    if m not in _KNOWN_MUTATING:
        return m, path, Classification(Risk.DESTRUCTIVE, f"unknown HTTP method {method!r}: treated as destructive")
    for rule in DESTRUCTIVE_RULES:
        if rule.matches(m, path):
            return m, path, Classification(Risk.DESTRUCTIVE, rule.reason)
    return m, path, None


def explain_operation(method: str, template: str) -> Classification:
    """Risk of an operation over all possible arguments, with the reason (see module docstring)."""
    m, path, fixed = _base(method, template)
    if fixed is not None:
        return fixed
    for rule in CONDITIONAL_RULES:
        if rule.matches(m, path):
            return Classification(Risk.DESTRUCTIVE, rule.reason, conditional=True)
    return Classification(Risk.WRITE, "changes state")


def classify_operation(method: str, template: str) -> Risk:
    """The worst-case :class:`Risk` of ``METHOD template`` (what ``destructiveHint`` should say)."""
    return explain_operation(method, template).risk


def explain_call(method: str, template: str, args: Mapping[str, Any] | None) -> Classification:
    """Risk of one concrete call (operation plus its arguments), with the reason.

    ``args`` are the call's parameters (path parameters may be included; they are ignored here).
    """
    m, path, fixed = _base(method, template)
    if fixed is not None:
        return fixed
    for rule in CONDITIONAL_RULES:
        if rule.matches(m, path):
            assert rule.predicate is not None
            reasons = rule.predicate(args or {})
            if reasons:
                return Classification(Risk.DESTRUCTIVE, "; ".join(reasons), conditional=True)
            return Classification(Risk.WRITE, "changes state", conditional=True)
    return Classification(Risk.WRITE, "changes state")


def classify_call(method: str, template: str, args: Mapping[str, Any] | None) -> Risk:
    """The :class:`Risk` of one concrete call; never above :func:`classify_operation`."""
    return explain_call(method, template, args).risk
