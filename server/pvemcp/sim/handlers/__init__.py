"""API handlers of the simulator; importing this package registers every route.

VMs and containers have one module per topic (``guest_reads``, ``guest_lifecycle``, ``guest_config``,
``guest_create``, ``guest_clone``, ``guest_template``, ``guest_delete``); snapshots, resize, migrate and the
guest agent have theirs too.
"""

from pvemcp.sim.handlers import (
    access,
    access_reads,
    agent,
    backup,
    cluster,
    cluster_reads,
    disk_resize,
    firewall,
    guest_clone,
    guest_config,
    guest_create,
    guest_delete,
    guest_lifecycle,
    guest_reads,
    guest_template,
    migrate,
    node_reads,
    nodes,
    rrd,
    snapshots,
    storage,
    tasks_api,
)

__all__ = [
    "access",
    "access_reads",
    "agent",
    "backup",
    "cluster",
    "cluster_reads",
    "disk_resize",
    "firewall",
    "guest_clone",
    "guest_config",
    "guest_create",
    "guest_delete",
    "guest_lifecycle",
    "guest_reads",
    "guest_template",
    "migrate",
    "node_reads",
    "nodes",
    "rrd",
    "snapshots",
    "storage",
    "tasks_api",
]
