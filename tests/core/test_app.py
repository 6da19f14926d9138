"""The App end to end against the simulator over real loopback HTTPS (no MCP in between).

The simulator's request log is the witness: a refused, previewed, dry-run or invalid call must
leave no mutating request in it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pvemcp.core.app import App
from pvemcp.core.config import AppConfig
from pvemcp.core.policy.config import PolicyConfig
from pvemcp.core.policy.ledger import load_key, verify
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.tools.base import CallContext, ConfirmationNeeded, ToolResult, UnknownTool
from simenv import DEFAULT_SIM, SimOptions

MUTATING = ("POST", "PUT", "DELETE")
CTX = CallContext(caller="test")


@pytest.fixture
def sim_options() -> SimOptions:
    """Seed 7, fast tasks (the shared ``sim`` fixture of tests/simenv.py builds it)."""
    return {**DEFAULT_SIM, "seed": 7, "task_speed": 200.0}


def make_config(sim: Any, policy: dict[str, Any] | None = None) -> AppConfig:
    cluster = ClientConfig(
        url=sim.url.removesuffix("/api2/json"),
        token_id=sim.token_id,
        token_secret=sim.token_secret,
        fingerprint=sim.fingerprint,
    )
    return AppConfig(clusters={"default": cluster}, policy=PolicyConfig.from_mapping(policy or {}))


def mutations(sim: Any) -> list[Any]:
    return [r for r in sim.request_log if r.method in MUTATING and not r.path.startswith("/access/ticket")]


async def call(app: App, name: str, args: dict[str, Any], ctx: CallContext = CTX) -> ToolResult:
    result = await app.call(name, args, ctx)
    assert isinstance(result, ToolResult), result
    return result


async def guests(app: App, **filters: Any) -> list[dict[str, Any]]:
    result = await call(app, "guest_list", {"limit": 500, **filters})
    assert not result.is_error, result.text
    items: list[dict[str, Any]] = result.structured["items"]
    return items


def first(items: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(i for i in items if pred(i))


@pytest.mark.anyio
async def test_list_is_compact_filtered_and_paginated(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        everything = await guests(app)
        # the operator's row: where, state, CPU and memory in readable units, tags (and a lock or template flag)
        columns = {"vmid", "name", "type", "node", "status", "cpu_pct", "mem_gib", "maxmem_gib", "tags"}
        assert everything and all(set(g) <= columns | {"template", "lock"} for g in everything)
        web = next(g for g in everything if g["status"] == "running" and g["type"] == "qemu")
        assert web["maxmem_gib"] >= web["mem_gib"] > 0 and 0 <= web["cpu_pct"] <= 100
        picked = await call(app, "guest_list", {"fields": ["uptime", "maxdisk"], "status": "running"})
        assert all(set(g) == {"vmid", "uptime", "maxdisk"} for g in picked.structured["items"])
        page = await call(app, "guest_list", {"limit": 2, "offset": 1})
        assert page.structured["total"] == len(everything)
        assert [g["vmid"] for g in page.structured["items"]] == [g["vmid"] for g in everything[1:3]]
        running = await guests(app, status="running")
        assert running and all(g["status"] == "running" for g in running)
        containers = await guests(app, type="lxc")
        assert containers and all(g["type"] == "lxc" for g in containers)
        raw = await call(app, "guest_list", {"fields": ["maxmem"], "limit": 1})
        assert raw.structured["items"][0]["maxmem"] > 0  # any raw field of /cluster/resources by name


@pytest.mark.anyio
async def test_start_waits_for_the_task_and_changes_the_cluster(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        vm = first(await guests(app, status="stopped", type="qemu"), lambda g: not g.get("template"))
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str) -> None:
            progress.append(value)

        result = await call(app, "guest_start", {"vmid": vm["vmid"]}, CallContext(caller="t", progress=on_progress))
        assert not result.is_error, result.text
        (item,) = result.structured["results"]
        assert item["ok"] and item["upid"].startswith("UPID:") and item["exitstatus"] == "OK"
        status = await call(app, "guest_status", {"vmid": vm["vmid"]})
        assert status.structured["data"]["status"] == "running"
        assert progress == sorted(progress)


@pytest.mark.anyio
async def test_destructive_call_needs_a_token_bound_to_its_arguments(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        running = [g for g in await guests(app, status="running", type="qemu")]
        assert len(running) >= 2
        vm, other = running[0], running[1]
        before = len(mutations(sim))
        preview = await call(app, "guest_stop", {"vmid": vm["vmid"]})
        assert not preview.is_error and preview.structured["confirmation"]["required"]
        assert str(vm["vmid"]) in preview.structured["confirmation"]["question"]
        assert "unsaved data" in preview.structured["confirmation"]["question"]
        token = preview.structured["confirmation"]["confirm_token"]
        assert len(mutations(sim)) == before
        swapped = await call(app, "guest_stop", {"vmid": other["vmid"], "confirm_token": token})
        assert swapped.is_error and len(mutations(sim)) == before
        done = await call(app, "guest_stop", {"vmid": vm["vmid"], "confirm_token": token})
        assert not done.is_error, done.text
        assert len(mutations(sim)) == before + 1
        reused = await call(app, "guest_stop", {"vmid": vm["vmid"], "confirm_token": token})
        assert reused.is_error and "token" in reused.text
        assert len(mutations(sim)) == before + 1


@pytest.mark.anyio
async def test_elicitation_capable_clients_get_a_question(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        vm = first(await guests(app, status="running"), lambda g: True)
        asked = await app.call("guest_stop", {"vmid": vm["vmid"]}, CallContext(caller="t", can_elicit=True))
        assert isinstance(asked, ConfirmationNeeded) and vm["node"] in asked.question
        declined = await app.record_declined("guest_stop", {"vmid": vm["vmid"]}, CTX, "decline")
        assert declined.is_error and "nothing was sent" in declined.text
        assert not mutations(sim)
        confirmed = CallContext(caller="t", can_elicit=True, confirmed=True, confirmed_plan=asked.plan_digest)
        ran = await call(app, "guest_stop", {"vmid": vm["vmid"]}, confirmed)
        assert not ran.is_error, ran.text


@pytest.mark.anyio
async def test_dry_run_and_invalid_arguments_send_nothing(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        vm = first(await guests(app, type="qemu"), lambda g: not g.get("template"))
        dry = await call(app, "guest_delete", {"vmid": vm["vmid"], "purge": True, "dry_run": True})
        (request,) = dry.structured["dry_run"]["requests"]
        assert request["method"] == "DELETE" and request["path"] == f"/nodes/{vm['node']}/qemu/{vm['vmid']}"
        assert dry.structured["dry_run"]["policy"]["decision"] == "confirm"
        bad = await call(app, "guest_start", {"vmid": "abc"})
        assert bad.is_error and "vmid" in bad.text
        unknown = await call(app, "guest_start", {"vmid": vm["vmid"], "bogus": 1})
        assert unknown.is_error and "bogus" in unknown.text
        snap = await call(app, "snapshot_create", {"vmid": vm["vmid"], "snapname": "1bad"})
        assert snap.is_error and "snapname" in snap.text
        for number in (float("nan"), float("inf")):  # the SDK's JSON parser accepts both; JSON has neither
            odd = await call(
                app, "api_call", {"method": "PUT", "path": f"/nodes/{vm['node']}/qemu/{vm['vmid']}/config",
                                  "args": {"balloon": 512, "weights": [1, number]}},
            )  # fmt: skip
            assert odd.is_error and "args.weights[1] is not a finite number" in odd.text, odd.text
        assert not mutations(sim)
        assert isinstance(await app.call("no_such_tool", {}, CTX), UnknownTool)


@pytest.mark.anyio
async def test_batch_snapshot_reports_each_guest(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        picked = [g["vmid"] for g in await guests(app) if not g.get("template")][:3]
        result = await call(app, "snapshot_create", {"vmids": picked, "snapname": "batch1"})
        assert result.structured["ok"] + result.structured["failed"] == len(picked)
        assert {r["vmid"] for r in result.structured["results"]} == set(picked)
        for vmid in picked:
            listing = await call(app, "snapshot_list", {"vmid": vmid})
            names = [s["name"] for s in listing.structured["items"]]
            assert "batch1" in names and names[-1] == "current"


@pytest.mark.anyio
async def test_config_update_accepts_structured_property_strings_and_digest(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        vm = first(await guests(app, type="qemu"), lambda g: not g.get("template"))
        config = await call(app, "guest_config", {"vmid": vm["vmid"]})
        digest = config.structured["data"]["digest"]
        update = {"net1": {"model": "virtio", "bridge": "vmbr0", "firewall": True}, "description": "set by test"}
        result = await call(app, "guest_config_set", {"vmid": vm["vmid"], "set": update, "digest": digest})
        assert not result.is_error, result.text
        after = (await call(app, "guest_config", {"vmid": vm["vmid"]})).structured["data"]
        assert after["net1"].startswith("virtio") and "bridge=vmbr0" in after["net1"] and "firewall=1" in after["net1"]
        stale = await call(app, "guest_config_set", {"vmid": vm["vmid"], "set": {"description": "x"}, "digest": digest})
        assert stale.is_error
        error = stale.structured["results"][0]["error"]  # Proxmox's words, then the step that works
        assert "checksum mismatch" in error and "read it again (guest_config)" in error and "new digest" in error


@pytest.mark.anyio
async def test_clone_defaults_to_the_next_free_vmid(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        template = first(await guests(app, type="qemu"), lambda g: bool(g.get("template")))
        free = (await call(app, "next_vmid", {})).structured["data"]["vmid"]
        result = await call(app, "guest_clone", {"vmid": template["vmid"], "name": "from-test"})
        assert not result.is_error, result.text
        created = first(await guests(app), lambda g: g["vmid"] == free)
        assert created["name"] == "from-test"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/nodes/NODE//qemu/VMID/status/stop",
        "/nodes/NODE/qemu/VMID/status/stop/",
        "/nodes/NODE/qemu/VMID/status/%73top",
        "/nodes/NODE/qemu/VMID/status/../status/stop",
        "/Nodes/NODE/qemu/VMID/status/stop",
        "/nodes/NODE/qemu/VMID/status/stop?skiplock=1",
    ],
)
async def test_generic_api_refuses_path_tricks(sim: Any, path: str) -> None:
    async with App(make_config(sim)) as app:
        vm = first(await guests(app, status="running"), lambda g: True)
        concrete = path.replace("NODE", vm["node"]).replace("VMID", str(vm["vmid"]))
        result = await call(app, "api_call", {"method": "POST", "path": concrete})
        assert result.is_error
        assert not mutations(sim)


@pytest.mark.anyio
async def test_generic_api_reads_freely_and_confirms_destructive_calls(sim: Any) -> None:
    async with App(make_config(sim)) as app:
        version = await call(app, "api_get", {"path": "/version"})
        assert not version.is_error and version.structured["data"]["release"].startswith("9")
        vm = first(await guests(app, status="running"), lambda g: True)
        path = f"/nodes/{vm['node']}/qemu/{vm['vmid']}/status/stop" if vm["type"] == "qemu" else None
        path = path or f"/nodes/{vm['node']}/lxc/{vm['vmid']}/status/stop"
        preview = await call(app, "api_call", {"method": "POST", "path": path})
        assert preview.structured["confirmation"]["required"]
        assert not mutations(sim)
        found = await call(app, "api_search", {"query": "qemu snapshot rollback"})
        assert any("rollback" in h["operation"] for h in found.structured["items"])


@pytest.mark.anyio
async def test_read_only_hides_mutating_tools_and_refuses_generic_mutations(sim: Any) -> None:
    async with App(make_config(sim, {"read_only": True})) as app:
        names = {t.name for t in app.tools()}
        assert "guest_start" not in names and "guest_list" in names and "api_get" in names
        assert "api_call" not in names  # the generic write tool is not listed either
        refused = await call(app, "guest_start", {"vmid": 100})
        assert refused.structured["refused"]["reason"] == "read_only" and "read-only" in refused.text
        vm = first(await guests(app), lambda g: True)
        path = f"/nodes/{vm['node']}/{vm['type']}/{vm['vmid']}/status/start"
        refused = await call(app, "api_call", {"method": "POST", "path": path})
        assert refused.structured["refused"]["reason"] == "read_only"
        assert not mutations(sim)


@pytest.mark.anyio
async def test_a_tool_rule_binds_the_generic_api_but_not_another_curated_tool(sim: Any) -> None:
    """backup_restore = "deny": vm_create (same POST, but it sends no archive) still creates; api_call reaching
    POST /nodes/{node}/qemu, which could send one, is refused by that rule."""
    async with App(make_config(sim, {"rules": {"backup_restore": "deny"}})) as app:
        node = first(await guests(app), lambda g: True)["node"]
        created = await call(app, "vm_create", {"node": node, "vmid": 4242, "name": "alone", "dry_run": True})
        assert created.structured["dry_run"]["policy"]["decision"] == "allow", created.text
        generic = await call(
            app, "api_call", {"method": "POST", "path": f"/nodes/{node}/qemu", "args": {"vmid": 4243}, "dry_run": True}
        )
        assert generic.structured["refused"]["reason"] == "rule" and "backup_restore" in generic.text, generic.text
        assert app.tool("backup_restore") is None and app.tool("vm_create") is not None
        assert not mutations(sim)


@pytest.mark.anyio
async def test_scope_refuses_foreign_targets_whole(sim: Any) -> None:
    async with App(make_config(sim)) as probe:
        everyone = [g for g in await guests(probe) if not g.get("template")]
    inside, outside = everyone[0], everyone[-1]
    policy = {"scope": {"vmid_ranges": [[inside["vmid"], inside["vmid"]]]}}
    async with App(make_config(sim, policy)) as app:
        listed = await guests(app)
        assert [g["vmid"] for g in listed] == [inside["vmid"]]
        batch = await call(app, "guest_start", {"vmids": [inside["vmid"], outside["vmid"]]})
        assert batch.is_error and "scope" in batch.text
        clone = await call(app, "guest_clone", {"vmid": inside["vmid"], "newid": 999000})
        assert clone.is_error and "scope" in clone.text
        status = await call(app, "guest_status", {"vmid": outside["vmid"]})
        assert status.is_error
        assert not mutations(sim)


@pytest.mark.anyio
async def test_ledger_records_decisions_and_verifies(sim: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "audit.jsonl"
    async with App(make_config(sim, {"audit_log": str(ledger)})) as app:
        vm = first(await guests(app, status="stopped"), lambda g: not g.get("template"))
        await call(app, "guest_start", {"vmid": vm["vmid"]})
        preview = await call(app, "guest_delete", {"vmid": vm["vmid"]})
        assert preview.structured["confirmation"]["required"]
        await call(app, "guest_delete", {"vmid": vm["vmid"], "confirm_token": "forged"})
    text = ledger.read_text(encoding="utf-8")
    assert '"outcome":"allowed"' in text and '"outcome":"succeeded"' in text and '"outcome":"denied"' in text
    assert sim.token_secret not in text
    report = verify(ledger, load_key(Path(str(ledger) + ".key")))
    assert report.intact, report.format()
