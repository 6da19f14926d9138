"""``pvemcp serve`` over stdio, as a real subprocess, driven by the official client in both eras."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from pvemcp.sim.runner import RunningSimulator

from .helpers import MODES, Answers, guest_with, ledger, mutating, python, subprocess_env, text_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_stdio_session(sim: RunningSimulator, mode: str, tmp_path: Path) -> None:
    stopped = guest_with(sim, status="stopped")
    running = guest_with(sim, status="running")
    audit = tmp_path / "audit.jsonl"
    env = subprocess_env(sim, PVEMCP_AUDIT_LOG=str(audit))
    params = StdioServerParameters(command=python(), args=["-m", "pvemcp", "serve"], env=env)
    answers = Answers("accept")
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with Client(params, mode=mode, elicitation_callback=answers) as client:
        assert client.protocol_version == MODES[mode]
        tools = (await client.list_tools()).tools
        assert len(tools) > 20 and all(t.annotations is not None and t.output_schema for t in tools)

        listing = await client.call_tool("guest_list", {"status": "running"})
        assert not listing.is_error, text_of(listing)
        assert listing.structured_content is not None
        assert running in {g["vmid"] for g in listing.structured_content["items"]}

        started = await client.call_tool("guest_start", {"vmid": stopped, "wait": 60}, progress_callback=on_progress)
        assert not started.is_error, text_of(started)

        stopped_now = await client.call_tool("guest_stop", {"vmid": running})
        assert not stopped_now.is_error, text_of(stopped_now)

    assert sim.state.guests[stopped].status == "running"
    assert sim.state.guests[running].status == "stopped"
    assert len(answers.questions) == 1
    assert reported
    assert len(mutating(sim)) == 2
    assert {r["caller"] for r in ledger(audit)} == {"stdio"}
