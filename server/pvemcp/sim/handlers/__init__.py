"""API handlers of the simulator; importing this package registers every route."""

from pvemcp.sim.handlers import access, backup, cluster, guests, nodes, snapshots, storage, tasks_api

__all__ = ["access", "backup", "cluster", "guests", "nodes", "snapshots", "storage", "tasks_api"]

# the host, cluster, access and firewall reads of issue 12 (their own modules, registered here)
from pvemcp.sim.handlers import access_reads, cluster_reads, firewall, node_reads

__all__ += ["access_reads", "cluster_reads", "firewall", "node_reads"]
