"""Every tool of the default toolsets, driven through the official MCP client against the simulator.

One scripted session per protocol era: each step calls one tool as a model would and checks both the
result and the simulator's state. The client validates every structured result against the tool's
outputSchema, so schema drift fails here too. A final check proves no listed tool was left out.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from pvemcp.core.render import leaf_text, leaves
from pvemcp.door.server import build_server
from pvemcp.sim.runner import RunningSimulator

from .helpers import MODES, Answers, guest_with, text_of

pytestmark = pytest.mark.anyio


class Session:
    """Calls tools, remembers which ones were exercised, and fails loudly on an unexpected error."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.used: set[str] = set()
        self.last_text = ""

    async def call(self, name: str, args: dict[str, Any], *, ok: bool = True) -> dict[str, Any]:
        self.used.add(name)
        result: types.CallToolResult = await self.client.call_tool(name, args)
        assert result.is_error == (not ok), f"{name}({args}): {text_of(result)}"
        text = self.last_text = text_of(result)
        assert text, f"{name} returned no text summary"
        structured = dict(result.structured_content or {})
        # One result, two faces: a text-only host must see every fact a structured host sees.
        missing = [leaf for leaf in leaves(structured) if leaf_text(leaf) not in text]
        assert not missing, f"{name}: text face lacks {missing[:5]}\n{text}"
        return structured


@pytest.mark.parametrize("mode", list(MODES))
async def test_every_tool_against_the_simulator(sim: RunningSimulator, app: Any, mode: str) -> None:
    state = sim.state
    stopped_vm = guest_with(sim, status="stopped")
    running_vm = guest_with(sim, status="running")
    running_ct = guest_with(sim, status="running", kind="lxc")
    template = next(v for v, g in sorted(state.guests.items()) if g.template and g.type == "qemu")
    node = state.guests[running_vm].node

    def config_digest(vmid: int) -> str:
        from pvemcp.sim.state import config_digest as digest_of

        return digest_of(state.guests[vmid])

    async with Client(build_server(app), mode=mode, elicitation_callback=Answers("accept")) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        s = Session(client)

        # cluster, storage, lists
        assert (await s.call("cluster_status", {}))["data"]["nodes"]
        health = (await s.call("node_status", {"node": node}))["data"]
        assert health["maxmem_gib"] > 0 and "cpu_pct" in health and health["uptime"]
        free = (await s.call("next_vmid", {}))["data"]["vmid"]
        assert free not in state.guests
        assert (await s.call("next_vmid", {"vmid": running_vm}))["data"]["free"] is False
        listing = await s.call("guest_list", {"status": "running"})
        assert listing["total"] == sum(1 for g in state.guests.values() if g.status == "running")
        storages = await s.call("storage_list", {})
        assert {st["storage"] for st in storages["items"]} >= {"local", "local-lvm"}
        isos = await s.call("storage_list", {"node": node, "content": "iso"})
        assert all("iso" in st["content"] for st in isos["items"])
        templates = await s.call("storage_content", {"node": node, "storage": "local", "content": "vztmpl"})
        ostemplate = templates["items"][0]["volid"]

        # one guest, read
        assert (await s.call("guest_status", {"vmid": running_vm}))["data"]["status"] == "running"
        config = (await s.call("guest_config", {"vmid": running_vm}))["data"]
        assert "digest" in config

        # power
        started = await s.call("guest_start", {"vmid": stopped_vm})
        assert started["ok"] == 1 and state.guests[stopped_vm].status == "running"
        await s.call("guest_suspend", {"vmid": stopped_vm})
        assert state.guests[stopped_vm].qmpstatus == "paused"
        await s.call("guest_resume", {"vmid": stopped_vm})
        assert state.guests[stopped_vm].qmpstatus == "running"
        rebooted = await s.call("guest_reboot", {"vmid": stopped_vm})
        assert rebooted["results"][0]["exitstatus"] == "OK"
        await s.call("guest_shutdown", {"vmid": stopped_vm, "forceStop": True})
        assert state.guests[stopped_vm].status == "stopped"
        await s.call("guest_stop", {"vmid": running_ct})  # destructive: confirmed through elicitation
        assert state.guests[running_ct].status == "stopped"

        # config
        await s.call("guest_config_set", {"vmid": stopped_vm, "set": {"cores": 3}, "digest": config_digest(stopped_vm)})
        assert str(state.guests[stopped_vm].config["cores"]) == "3"

        # snapshots
        await s.call("snapshot_create", {"vmid": stopped_vm, "snapname": "before"})
        assert "before" in state.guests[stopped_vm].snapshots
        snaps = await s.call("snapshot_list", {"vmid": stopped_vm})
        assert snaps["items"][-1]["name"] == "current"
        await s.call("guest_config_set", {"vmid": stopped_vm, "set": {"cores": 5}})
        await s.call("snapshot_rollback", {"vmid": stopped_vm, "snapname": "before"})
        assert str(state.guests[stopped_vm].config["cores"]) == "3"
        await s.call("snapshot_delete", {"vmid": stopped_vm, "snapname": "before"})
        assert "before" not in state.guests[stopped_vm].snapshots

        # create, clone, delete
        vm = await s.call("vm_create", {"node": node, "name": "made-by-test", "memory": 1024, "scsi0": "local-lvm:4"})
        assert vm["ok"] == 1 and state.guests[free].name == "made-by-test"
        ct = await s.call(
            "ct_create", {"node": node, "ostemplate": ostemplate, "hostname": "ct-by-test", "rootfs": "local-lvm:4"}
        )
        assert ct["ok"] == 1
        new_ct = ct["results"][0]["vmid"]
        assert state.guests[new_ct].type == "lxc" and state.guests[new_ct].name == "ct-by-test"
        clone = await s.call("guest_clone", {"vmid": template, "name": "clone-by-test"})
        assert clone["ok"] == 1
        clone_id = clone["results"][0]["newid"]
        assert state.guests[clone_id].name == "clone-by-test"
        await s.call("guest_delete", {"vmid": clone_id, "purge": True})
        assert clone_id not in state.guests

        # backups
        jobs_before = len(state.backup_jobs)
        await s.call("backup_jobs", {})
        await s.call("backup_job_create", {"schedule": "sat 02:00", "vmid": str(stopped_vm), "storage": "local"})
        assert len(state.backup_jobs) == jobs_before + 1
        backup = await s.call("backup_now", {"vmids": [stopped_vm], "storage": "local", "mode": "snapshot"})
        assert backup["ok"] == 1
        home = state.guests[stopped_vm].node  # local storage is per node: the archive is where the guest is
        backups = await s.call("storage_content", {"node": home, "storage": "local", "content": "backup"})
        assert any(f"-{stopped_vm}-" in item["volid"] for item in backups["items"])

        # tasks
        upid = backup["results"][0]["upid"]
        assert (await s.call("task_status", {"upid": upid}))["data"]["exitstatus"] == "OK"
        log = await s.call("task_log", {"upid": upid})
        assert log["items"][-1] == "TASK OK"
        tasks = await s.call("task_list", {"node": home})
        assert any(t["upid"] == upid for t in tasks["items"])
        await s.call("task_list", {})
        slow = await s.call("guest_start", {"vmid": stopped_vm, "wait": 0})
        running_upid = slow["results"][0]["upid"]
        stopped = await s.call("task_stop", {"upid": running_upid})
        assert "data" in stopped

        # generic API
        found = await s.call("api_search", {"query": "qemu migrate"})
        assert any(h["operation"] == "POST /nodes/{node}/qemu/{vmid}/migrate" for h in found["items"])
        described = await s.call("api_search", {"operation": "GET /nodes/{node}/qemu"})
        assert described["data"]["input_schema"]["required"] == ["node"]
        version = await s.call("api_get", {"path": "/version"})
        assert version["data"]["release"].startswith("9")
        noted = await s.call(
            "api_call",
            {
                "method": "PUT",
                "path": f"/nodes/{home}/qemu/{stopped_vm}/config",
                "args": {"description": "seen by the generic tool"},
            },
        )
        assert noted["data"]["ok"]

    assert s.used == listed, f"not exercised: {sorted(listed - s.used)}"
