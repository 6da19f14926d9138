"""Helpers shared by the door tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mcp_types as types

from pvemcp.sim.runner import RunningSimulator
from simenv import cluster_env as cluster_env
from simenv import subprocess_env as subprocess_env

MODES = {"auto": "2026-07-28", "legacy": "2025-11-25"}
REPO = Path(__file__).resolve().parents[2]


def mutating(sim: RunningSimulator) -> list[Any]:
    """Requests that could change the cluster (everything but reads)."""
    return [r for r in sim.request_log if r.method != "GET"]


def guest_with(sim: RunningSimulator, *, status: str, kind: str = "qemu") -> int:
    """The lowest vmid of a non-template guest of ``kind`` in ``status``."""
    for vmid, guest in sorted(sim.state.guests.items()):
        if guest.type == kind and guest.status == status and not guest.template and guest.lock is None:
            return vmid
    raise LookupError(f"no {status} {kind} guest in the simulated cluster")


class Answers:
    """An elicitation callback answering as told, and recording the questions it was asked."""

    def __init__(self, action: str = "accept", confirm: bool = True) -> None:
        self.action = action
        self.confirm = confirm
        self.questions: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.questions.append(getattr(params, "message", ""))
        if self.action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": self.confirm})
        return types.ElicitResult(action=self.action)  # type: ignore[arg-type]


def text_of(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


def ledger(path: Path) -> list[Mapping[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def python() -> str:
    return sys.executable
