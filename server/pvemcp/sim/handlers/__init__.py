"""API handlers of the simulator; importing this package registers every route."""

from pvemcp.sim.handlers import (
    access,
    agent,
    backup,
    cluster,
    disk_resize,
    guests,
    migrate,
    nodes,
    rrd,
    snapshots,
    storage,
    tasks_api,
)

__all__ = [
    "access",
    "agent",
    "backup",
    "cluster",
    "disk_resize",
    "guests",
    "migrate",
    "nodes",
    "rrd",
    "snapshots",
    "storage",
    "tasks_api",
]
