"""API handlers of the simulator; importing this package registers every route."""

from pvemcp.sim.handlers import access, backup, cluster, guests, nodes, snapshots, storage, tasks_api

__all__ = ["access", "backup", "cluster", "guests", "nodes", "snapshots", "storage", "tasks_api"]
