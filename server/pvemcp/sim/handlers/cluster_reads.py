"""Cluster-wide reads: cluster log, datacenter options, HA, SDN zones, Ceph status, replication jobs.

The seeded cluster runs no HA resources, no SDN zones, no Ceph and no replication (its guests live on
LVM-thin and NFS, and replication needs ZFS), so most of these answer what a fresh PVE 9.1 cluster
answers; each handler cites the code whose answer it reproduces.
"""

from __future__ import annotations

from typing import Any

from pvemcp.dialect.formats import split_list
from pvemcp.sim.errors import fail
from pvemcp.sim.handlers.common import quorate
from pvemcp.sim.perms import can
from pvemcp.sim.routing import Call, route

# pmxcfs' default when the API passes max=0 (the C clusterlog and its Rust port both use 50)
_CLUSTER_LOG_DEFAULT_MAX = 50
_LOG_INFO = 6
_LOG_ERR = 3

# datacenter.cfg of the seeded cluster
DATACENTER_CFG: dict[str, Any] = {"keyboard": "en-us", "console": "html5"}


def _log_events(call: Call) -> list[dict[str, Any]]:
    """The cluster log as pvedaemon fills it: one line when a task starts, one when it ends.

    pve-common ``RESTEnvironment.pm``: ``fork_worker`` logs ``starting task UPID`` and ``$log_task_result``
    ``end task UPID STATUS`` (priority err when the worker failed) through ``log_cluster_msg`` ->
    ``PVE::Cluster::log_msg``, from the API daemon's process, with the task's user as ident. ``uid``
    numbers the entries in order.
    """
    events: list[tuple[int, int, dict[str, Any]]] = []
    hosts = call.sim.hosts
    for seq, task in enumerate(call.sim.tasks.all()):
        p = task.upid
        pid = hosts[p.node].daemon_pid if p.node in hosts else p.pid
        base = {"pri": _LOG_INFO, "tag": "pvedaemon", "pid": pid, "node": p.node, "user": p.user}
        events.append((p.starttime, 2 * seq, {**base, "time": p.starttime, "msg": f"starting task {task.upid}"}))
        if task.endtime is not None and task.exitstatus is not None:
            status = task.exitstatus
            failed = status != "OK" and not status.startswith("WARNINGS")
            end = {**base, "pri": _LOG_ERR if failed else _LOG_INFO, "time": task.endtime}
            events.append((task.endtime, 2 * seq + 1, {**end, "msg": f"end task {task.upid} {status}"}))
    events.sort(key=lambda e: (e[0], e[1]))
    out: list[dict[str, Any]] = []
    for uid, (_, _, entry) in enumerate(events, start=1):
        entry["uid"] = uid
        entry["id"] = f"{uid}:{entry['node']}"
        out.append(entry)
    return out


@route("GET", "/cluster/log")
def cluster_log(call: Call) -> list[dict[str, Any]]:
    """pve-manager ``API2/Cluster.pm`` ``log``: all entries for ``Sys.Syslog`` on ``/``, else the caller's."""
    limit = call.integer("max") or _CLUSTER_LOG_DEFAULT_MAX
    own = None if can(call.ident, "Sys.Syslog") else call.ident.authid
    out: list[dict[str, Any]] = []
    for entry in reversed(_log_events(call)):  # clog_dump_json walks from the newest entry back
        if len(out) >= limit:
            break
        if own is not None and entry["user"] != own:
            continue
        out.append(entry)
    return out


@route("GET", "/cluster/options")
def cluster_options(call: Call) -> dict[str, Any]:
    """``API2/Cluster.pm`` ``get_options``: datacenter.cfg (only console/tag-style without Sys.Audit) and
    ``allowed-tags`` (``PVE::GuestHelpers::get_allowed_tags``: the tags of the guests the caller may audit,
    as the seeded datacenter.cfg has no ``user-tag-access`` or ``registered-tags``)."""
    if can(call.ident, "Sys.Audit"):
        out = dict(DATACENTER_CFG)
    else:
        out = {k: v for k, v in DATACENTER_CFG.items() if k in ("console", "tag-style")}
    tags: set[str] = set()
    if can(call.ident, "VM.Audit") or can(call.ident, "Sys.Modify"):
        for guest in call.sim.state.guests.values():
            tags.update(split_list(str(guest.config.get("tags", ""))))  # get_allowed_tags: split_list
    out["allowed-tags"] = sorted(tags)
    return out


@route("GET", "/cluster/ha/status/current")
def ha_status(call: Call) -> list[dict[str, Any]]:
    """pve-ha-manager ``API2/HA/Status.pm`` ``status``: with HA never configured the manager status is
    empty, so only the quorum entry of the node answering remains."""
    node = call.sim.local_node
    if quorate(call.sim.state):
        return [{"id": "quorum", "type": "quorum", "node": node, "status": "OK", "quorate": 1}]
    status = f"No quorum on node '{node}'!"
    return [{"id": "quorum", "type": "quorum", "node": node, "status": status, "quorate": 0}]


@route("GET", "/cluster/ha/resources")
def ha_resources(call: Call) -> list[dict[str, Any]]:
    return []  # resources.cfg is empty


@route("GET", "/cluster/sdn/zones")
def sdn_zones(call: Call) -> list[dict[str, Any]]:
    return []  # no zone in sdn/zones.cfg, neither pending nor running


@route("GET", "/cluster/ceph/status")
def ceph_status(call: Call) -> dict[str, Any]:
    # API2/Cluster/Ceph.pm 'status' -> PVE::Ceph::Tools::check_ceph_inited -> check_ceph_installed('ceph_mon')
    raise fail("binary not installed: /usr/bin/ceph-mon")


@route("GET", "/cluster/replication")
def replication_jobs(call: Call) -> list[dict[str, Any]]:
    return []  # API2/ReplicationConfig.pm 'index' over an empty replication.cfg
