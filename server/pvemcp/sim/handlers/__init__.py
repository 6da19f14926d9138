"""API handlers of the simulator; importing this package registers every route."""

from pvemcp.sim.handlers import access, backup, cluster, guests, nodes, snapshots, storage, tasks_api

# the guest agent, resize, migrate, restore and RRD endpoints of issue 13 (registered on import)
from pvemcp.sim.handlers import agent as agent
from pvemcp.sim.handlers import disk_resize as disk_resize
from pvemcp.sim.handlers import migrate as migrate
from pvemcp.sim.handlers import rrd as rrd

__all__ = ["access", "backup", "cluster", "guests", "nodes", "snapshots", "storage", "tasks_api"]

# the host, cluster, access and firewall reads of issue 12 (their own modules, registered here)
from pvemcp.sim.handlers import access_reads, cluster_reads, firewall, node_reads

__all__ += ["access_reads", "cluster_reads", "firewall", "node_reads"]
