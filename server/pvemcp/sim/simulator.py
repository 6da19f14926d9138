"""One simulator instance: clock, cluster state, tasks, credentials, faults and the request log.

Everything a test or the CLI wants to poke at hangs off this object; the HTTP app (``app.py``) and the
handlers only ever reach the cluster through it. It is independent of the transport, so the same
instance could be served by any ASGI server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pvemcp.dialect.model import Operation, Spec, load_spec
from pvemcp.sim.auth import TICKET_LIFETIME, AuthService
from pvemcp.sim.clock import SimClock
from pvemcp.sim.faults import FaultSet, parse_fault_spec
from pvemcp.sim.fwconfig import FirewallStore, build_firewall
from pvemcp.sim.hostinfo import NodeHost, build_hosts
from pvemcp.sim.seed import build_cluster, seed_task_history
from pvemcp.sim.state import ClusterState
from pvemcp.sim.tasks import TaskManager

# query parameters whose values never reach the request log
SECRET_PARAMS = frozenset(
    {"password", "new-password", "ticket", "tfa-challenge", "otp", "cipassword", "token", "secret", "key"}
)
REQUEST_LOG_LIMIT = 50_000


@dataclass
class RequestRecord:
    """One served request, as tests and operators may see it — never with secrets."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    auth: str  # "ticket" | "token" | "none"
    user: str | None = None
    time: float = field(default_factory=time.time)


class Simulator:
    """The simulated cluster and its API behaviour, without HTTP."""

    def __init__(
        self,
        *,
        seed: int = 1,
        nodes: int = 3,
        guests: int = 12,
        task_speed: float = 1.0,
        latency_ms: float = 0.0,
        faults: str = "",
        start_epoch: float | None = None,
        spec: Spec | None = None,
    ) -> None:
        self.seed = seed
        self.clock = SimClock(task_speed=task_speed, start_epoch=start_epoch)
        self.state: ClusterState = build_cluster(seed=seed, nodes=nodes, guests=guests, clock=self.clock)
        self.tasks = TaskManager(self.state)
        self.hosts: dict[str, NodeHost] = build_hosts(self.state, seed)
        self.firewall: FirewallStore = build_firewall(self.state)
        self.auth = AuthService(self.clock)
        self.faults = FaultSet(seed=seed)
        if faults:
            parse_fault_spec(faults, self.faults)
        self.latency_s = max(0.0, latency_ms) / 1000.0
        self.request_log: list[RequestRecord] = []
        self.local_node = next(iter(self.state.nodes))
        from pvemcp.sim.guest_agent import GuestAgents

        self.guest_agents = GuestAgents()
        self.spec: Spec = spec or load_spec()
        seed_task_history(self.state, self.tasks)
        self.sync_faults()

    # ---- hooks for tests ---------------------------------------------------------------------------------

    def advance_clock(self, seconds: float) -> None:
        """Move simulated time forward; tasks due by then finish, tickets age."""
        self.clock.advance(seconds)
        self.tasks.tick()

    def expire_tickets(self) -> None:
        """Every ticket issued so far stops working (401 ``Authentication failed!``)."""
        self.auth.expire_tickets()

    def sync_faults(self) -> None:
        """Apply fault state that lives in the model: node online flags and the ticket lifetime."""
        offline = self.faults.offline_nodes
        for name, node in self.state.nodes.items():
            online = name not in offline
            if node.online != online:
                node.online = online
                self.state.touch()
        self.auth.ticket_lifetime = self.faults.ticket_lifetime or TICKET_LIFETIME

    def record(self, rec: RequestRecord) -> None:
        if len(self.request_log) >= REQUEST_LOG_LIMIT:
            del self.request_log[: REQUEST_LOG_LIMIT // 2]
        self.request_log.append(rec)

    # ---- generic answers for operations without a dedicated handler -----------------------------------

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for key in self.spec.keys():  # noqa: SIM118 - Spec is not a Mapping
            path = key.split(" ", 1)[1]
            parent, _, last = path.rpartition("/")
            if parent and not last.startswith("{"):
                out.setdefault(parent, set()).add(last)
        return {k: sorted(v) for k, v in out.items()}

    def is_directory_index(self, op: Operation) -> bool:
        """A GET whose summary says "index" and whose items are just ``subdir``/``name``."""
        if op.method != "GET" or "index" not in op.summary.lower():
            return False
        out = op.output_schema
        if out.get("type") != "array":
            return False
        props = set(out.get("items", {}).get("properties", {}))
        return props <= {"subdir", "name"} and op.path in self._children

    def directory_index(self, op: Operation) -> list[dict[str, Any]]:
        props = set(op.output_schema.get("items", {}).get("properties", {}))
        key = "subdir" if "subdir" in props else "name"
        return [{key: child} for child in self._children.get(op.path, [])]
