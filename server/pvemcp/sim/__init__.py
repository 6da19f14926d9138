"""The embedded Proxmox VE 9 simulator (stateful model + HTTPS app).

``from pvemcp.sim import running_simulator`` — imported lazily so that importing the package stays cheap
(uvicorn, cryptography and the cluster model load only when a simulator is actually started). Nothing in
``pvemcp.core`` imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pvemcp.sim.runner import RunningSimulator, running_simulator
    from pvemcp.sim.simulator import Simulator

__all__ = ["RunningSimulator", "Simulator", "running_simulator"]


def __getattr__(name: str) -> Any:
    if name in ("running_simulator", "RunningSimulator"):
        from pvemcp.sim import runner

        return getattr(runner, name)
    if name == "Simulator":
        from pvemcp.sim.simulator import Simulator

        return Simulator
    raise AttributeError(f"module 'pvemcp.sim' has no attribute {name!r}")
