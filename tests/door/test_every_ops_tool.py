"""Every tool of the opt-in toolsets (ops, metrics, exec), driven through the official MCP client.

The sibling of tests/door/test_every_tool.py for the tools a default server does not list: with their
toolsets enabled (and guest_exec named by the policy), each is called once as a model would, the
simulator's state is checked, and each result's text face must carry every value of its structured
face (a text-only host sees what a structured host sees). A final check proves none was left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from pvemcp.door._core import App, load_app_config
from pvemcp.door.server import build_server
from pvemcp.sim.runner import RunningSimulator

from .helpers import MODES, Answers, cluster_env
from .test_every_tool import Session

pytestmark = pytest.mark.anyio

OPT_IN = ("ops", "metrics", "exec")


@pytest.fixture
async def opt_in_app(sim: RunningSimulator, tmp_path: Path) -> AsyncIterator[App]:
    config = tmp_path / "pvemcp.toml"
    toolsets = ", ".join(f'"{t}"' for t in ("guests", *OPT_IN))
    config.write_text(
        f'[policy]\ntoolsets = [{toolsets}]\naudit_log = "{tmp_path / "audit.jsonl"}"\n'
        '[policy.rules]\nguest_exec = "confirm"\n',
        encoding="utf-8",
    )
    async with App(load_app_config(config_path=config, env=cluster_env(sim))) as app:
        yield app


@pytest.mark.parametrize("mode", list(MODES))
async def test_every_opt_in_tool_against_the_simulator(sim: RunningSimulator, opt_in_app: App, mode: str) -> None:
    state = sim.state
    opt_in = {t.name for t in opt_in_app.catalog.tools.values() if t.toolset in OPT_IN}
    async with Client(build_server(opt_in_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        s = Session(client)

        facts = (await s.call("guest_facts", {"vmid": 100}))["data"]
        assert facts["addresses"] and facts["os"]
        assert (await s.call("guest_facts", {"vmid": 103}))["data"]["addresses"]
        assert "cpu" in (await s.call("guest_metrics", {"vmid": 100, "timeframe": "day"}))["data"]["series"]
        assert "load" in (await s.call("node_metrics", {"node": "pve1"}))["data"]["series"]

        backups = await s.call("guest_backups", {"vmid": 101})
        restored = (await s.call("backup_restore", {"archive": backups["items"][0]["volid"]}))["data"]
        assert restored["exitstatus"] == "OK" and restored["vmid"] in state.guests

        grown = (await s.call("disk_grow", {"vmid": 100, "size": "+1G"}))["data"]
        assert grown["exitstatus"] == "OK" and "size=33G" in str(state.guests[100].config["scsi0"])
        assert (await s.call("guest_template", {"vmid": 110}))["data"]["exitstatus"] == "OK"
        assert state.guests[110].template

        changed = await s.call("guest_config_set", {"vmid": 105, "set": {"cores": 3}})
        call_id = changed["results"][0]["call_id"]
        undone = (await s.call("config_undo", {"call_id": call_id}))["data"]
        assert undone["call_id"] != call_id and str(state.guests[105].config["cores"]) != "3"

        ran = await s.call("guest_exec", {"vmid": 100, "command": ["cat", "/etc/os-release"]})
        assert ran["data"]["exitcode"] == 0 and "‹PRETTY_NAME" in s.last_text  # guest output, marked

        moved = (await s.call("guest_migrate", {"vmid": 100, "target": "pve2"}))["data"]
        assert moved["exitstatus"] == "OK" and state.guests[100].node == "pve2"

    assert opt_in <= listed, f"not listed: {sorted(opt_in - listed)}"
    assert opt_in <= s.used, f"not exercised: {sorted(opt_in - s.used)}"
