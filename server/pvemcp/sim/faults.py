"""Injected faults: latency, errors, connection resets, hangs and offline nodes.

A fault matches requests by path glob (``fnmatch`` on the API path without ``/api2/json``, e.g.
``/nodes/*/qemu*``), optionally by method, fires with probability ``rate`` (deterministic per seed) and at
most ``count`` times. ``offline_node`` is different: it marks a node as down, so everything proxied to it
gets pveproxy's 595 and listings show it offline — exactly what a powered-off cluster member looks like.

The CLI's ``--faults`` takes a comma-separated list of ``kind[=value][:glob][@METHOD]`` items::

    latency=200:/nodes/*          200 ms extra on matching paths
    error=0.1:/nodes/*/qemu*      10 % of matching requests fail with 500 "simulated fault"
    reset=0.05                    5 % of all requests get a TCP reset
    hang=0.01:/cluster/resources  1 % hang (until the client gives up or the server stops)
    offline=pve3                  node pve3 is down
    ticket-lifetime=60            tickets expire after 60 s instead of 2 h
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["latency", "error", "reset", "hang", "offline_node"]
KINDS: tuple[str, ...] = ("latency", "error", "reset", "hang", "offline_node")


@dataclass
class Fault:
    """One injected fault and how often it may still fire."""

    kind: FaultKind
    path: str = "*"
    method: str | None = None
    count: int | None = None
    status: int = 500
    message: str | None = None
    delay_s: float = 0.0
    node: str | None = None
    rate: float = 1.0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count


@dataclass
class FaultSet:
    """The faults of one simulator; ``add``/``clear`` are the test hooks of the contract."""

    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    offline_nodes: set[str] = field(default_factory=set)
    ticket_lifetime: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed ^ 0x5EED)

    def add(
        self,
        kind: str,
        path: str = "*",
        method: str | None = None,
        count: int | None = None,
        status: int = 500,
        message: str | None = None,
        delay_s: float = 0.0,
        node: str | None = None,
        rate: float = 1.0,
    ) -> Fault:
        """Inject a fault; ``kind`` is one of latency | error | reset | hang | offline_node."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "offline_node":
            if not node:
                raise ValueError("offline_node needs node=")
            self.offline_nodes.add(node)
        fault = Fault(
            kind=kind,  # type: ignore[arg-type]
            path=path,
            method=method,
            count=count,
            status=status,
            message=message,
            delay_s=delay_s,
            node=node,
            rate=rate,
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault and bring offline nodes back."""
        self.faults.clear()
        self.offline_nodes.clear()
        self.ticket_lifetime = None

    def select(self, method: str, path: str) -> list[Fault]:
        """The request faults (not offline nodes) that fire for this request; consumes counts."""
        fired: list[Fault] = []
        for f in self.faults:
            if f.kind == "offline_node" or f.exhausted or not f.matches(method, path):
                continue
            if f.rate < 1.0 and self._rng.random() >= f.rate:
                continue
            f.fired += 1
            fired.append(f)
        return fired


def parse_fault_spec(spec: str, faults: FaultSet) -> None:
    """Apply a ``--faults`` string (grammar in the module docstring); raises ValueError when malformed."""
    for raw in (s.strip() for s in spec.split(",")):
        if not raw:
            continue
        method: str | None = None
        if "@" in raw:
            raw, method = raw.rsplit("@", 1)
        glob = "*"
        head = raw
        if ":" in raw:
            head, glob = raw.split(":", 1)
        kind, _, value = head.partition("=")
        kind = kind.strip().lower()
        if kind in ("offline", "offline_node"):
            if not value:
                raise ValueError("offline needs a node name: offline=pve3")
            faults.add("offline_node", node=value)
        elif kind == "latency":
            faults.add("latency", path=glob, method=method, delay_s=float(value or 0) / 1000.0)
        elif kind in ("error", "reset", "hang"):
            rate = float(value) if value else 1.0
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{kind} rate must be between 0 and 1, got {rate}")
            faults.add(kind, path=glob, method=method, rate=rate, message="simulated fault")
        elif kind in ("ticket-lifetime", "ticket_lifetime"):
            faults.ticket_lifetime = int(value)
        else:
            raise ValueError(f"unknown fault {kind!r} in --faults")
