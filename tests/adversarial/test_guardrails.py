"""Adversarial guardrail tests: attempts to get a mutation past the policy.

The witness is the simulator's request log: every attempt here must leave zero mutating requests.
Elicitation forgery (pre-filled input_responses, forged or replayed request_state) and HTTP auth are
attacked through real MCP clients in tests/door; tampering with the ledger in tests/policy.
"""

from __future__ import annotations

from typing import Any

import pytest

from pvemcp.core.app import App
from pvemcp.core.config import AppConfig
from pvemcp.core.policy.config import PolicyConfig
from pvemcp.core.policy.confirm import ConfirmationStore
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.tools.base import CallContext, ToolResult, UnknownTool

pytestmark = pytest.mark.anyio


def config(sim: Any, policy: dict[str, Any] | None = None) -> AppConfig:
    cluster = ClientConfig(
        url=sim.url, token_id=sim.token_id, token_secret=sim.token_secret, fingerprint=sim.fingerprint
    )
    return AppConfig(clusters={"default": cluster}, policy=PolicyConfig.from_mapping(policy or {}))


def mutations(sim: Any) -> list[Any]:
    return [r for r in sim.request_log if r.method != "GET"]


def running_guest(sim: Any) -> Any:
    return next(g for _, g in sorted(sim.state.guests.items()) if g.status == "running" and not g.template)


async def result(app: App, tool: str, args: dict[str, Any], caller: str = "agent") -> ToolResult:
    outcome = await app.call(tool, args, CallContext(caller=caller))
    assert isinstance(outcome, ToolResult), outcome
    return outcome


async def test_expired_token_is_refused(sim: Any) -> None:
    now = [1000.0]
    store = ConfirmationStore(ttl_s=300, clock=lambda: now[0])
    guest = running_guest(sim)
    async with App(config(sim), confirmations=store) as app:
        preview = await result(app, "guest_stop", {"vmid": guest.vmid})
        token = preview.structured["confirmation"]["confirm_token"]
        now[0] += 301
        late = await result(app, "guest_stop", {"vmid": guest.vmid, "confirm_token": token})
        assert late.is_error and "expired" in late.text
    assert not mutations(sim)


async def test_token_of_another_caller_or_tool_is_refused(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim)) as app:
        preview = await result(app, "guest_stop", {"vmid": guest.vmid}, caller="alice")
        token = preview.structured["confirmation"]["confirm_token"]
        stolen = await result(app, "guest_stop", {"vmid": guest.vmid, "confirm_token": token}, caller="mallory")
        assert stolen.is_error
        other_tool = await result(app, "guest_delete", {"vmid": guest.vmid, "confirm_token": token}, caller="alice")
        assert other_tool.is_error
        forged = await result(app, "guest_stop", {"vmid": guest.vmid, "confirm_token": "A" * 46}, caller="alice")
        assert forged.is_error
    assert not mutations(sim)


@pytest.mark.parametrize(
    "path",
    [
        "/api2/json/nodes/{node}/{kind}/{vmid}/status/stop",  # the full URL's prefix: still a stop
        "/nodes/{node}/{kind}/{vmid}/status/stop",
    ],
)
async def test_destructive_endpoints_through_the_generic_tool_need_confirmation(sim: Any, path: str) -> None:
    guest = running_guest(sim)
    concrete = path.format(node=guest.node, kind=guest.type, vmid=guest.vmid)
    async with App(config(sim)) as app:
        preview = await result(app, "api_call", {"method": "POST", "path": concrete})
        assert preview.structured["confirmation"]["required"], preview.text
        lower = await result(app, "api_call", {"method": "post", "path": concrete})
        assert lower.is_error
    assert not mutations(sim)


@pytest.mark.parametrize(
    "path",
    ["/nodes/{node}/{kind}/{vmid}/status/%2e%2e/status/stop", "/nodes/{node}/{kind}/{vmid}/./status/stop", "//version"],
)
async def test_encoded_and_dotted_paths_are_refused(sim: Any, path: str) -> None:
    guest = running_guest(sim)
    async with App(config(sim)) as app:
        refused = await result(
            app, "api_call", {"method": "POST", "path": path.format(node=guest.node, kind=guest.type, vmid=guest.vmid)}
        )
        assert refused.is_error and "path" in refused.text
    assert not mutations(sim)


async def test_read_only_cannot_be_bypassed(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim, {"read_only": True})) as app:
        listed = {t.name for t in app.tools()}
        assert "api_get" in listed and not [t.name for t in app.tools() if not t.annotations["readOnlyHint"]]
        for tool in ("guest_stop", "guest_config_set", "snapshot_rollback", "guest_delete", "api_call"):
            hidden = await result(app, tool, {"vmid": guest.vmid})
            assert hidden.structured["refused"]["reason"] == "read_only", hidden.text
        assert isinstance(await app.call("no_such_tool", {}, CallContext()), UnknownTool)
        stop = f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/stop"
        for args in (
            {"method": "POST", "path": stop},
            {"method": "POST", "path": stop, "dry_run": False, "confirm_token": "x" * 46},
            {"method": "DELETE", "path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}"},
        ):
            assert (await result(app, "api_call", args)).structured["refused"]["reason"] == "read_only"
            # The read tool takes no method: a mutation cannot be smuggled through it.
            smuggled = await result(app, "api_get", args)
            assert smuggled.is_error and "method" in smuggled.text
        read = await result(app, "api_get", {"path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/current"})
        assert not read.is_error and read.structured["data"]["status"] == "running"
    assert not mutations(sim)


async def test_scope_covers_target_nodes_new_ids_and_batches(sim: Any) -> None:
    guests = [g for _, g in sorted(sim.state.guests.items()) if not g.template]
    home = guests[0].node
    others = sorted({g.node for g in sim.state.guests.values()} - {home})
    template = next(g for _, g in sorted(sim.state.guests.items()) if g.template and g.node == home)
    policy = {"scope": {"nodes": [home], "vmid_ranges": [[100, 5000]]}}
    async with App(config(sim, policy)) as app:
        to_other_node = await result(app, "guest_clone", {"vmid": template.vmid, "newid": 4000, "target": others[0]})
        assert to_other_node.is_error and "scope" in to_other_node.text
        high_id = await result(app, "guest_clone", {"vmid": template.vmid, "newid": 6000})
        assert high_id.is_error and "scope" in high_id.text
        create_elsewhere = await result(app, "vm_create", {"node": others[0], "vmid": 4001})
        assert create_elsewhere.is_error and "scope" in create_elsewhere.text
        foreign = next(g for g in guests if g.node != home)
        mixed = await result(app, "guest_start", {"vmids": [guests[0].vmid, foreign.vmid]})
        assert mixed.is_error and str(foreign.vmid) in mixed.text
        generic = await result(
            app,
            "api_call",
            {"method": "POST", "path": f"/nodes/{foreign.node}/{foreign.type}/{foreign.vmid}/status/start"},
        )
        assert generic.is_error and "scope" in generic.text
        migrate = await result(
            app,
            "api_call",
            {
                "method": "POST",
                "path": f"/nodes/{home}/{guests[0].type}/{guests[0].vmid}/migrate",
                "args": {"target": others[0]},
            },
        )
        assert migrate.is_error and "scope" in migrate.text
        by_tag = await result(app, "guest_list", {"limit": 500})
        assert all(item["node"] == home for item in by_tag.structured["items"])
    assert not mutations(sim)


async def test_denied_tool_is_neither_listed_nor_callable(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim, {"rules": {"guest_delete": "deny", "destructive": "deny"}})) as app:
        names = {t.name for t in app.tools()}
        assert "guest_delete" not in names and "guest_stop" not in names
        hidden = await result(app, "guest_delete", {"vmid": guest.vmid})
        assert hidden.structured["refused"]["reason"] == "rule" and "guest_delete" in hidden.text
        generic = await result(
            app, "api_call", {"method": "POST", "path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/stop"}
        )
        assert generic.is_error and "refused by policy" in generic.text
    assert not mutations(sim)


async def test_allowing_the_generic_tool_does_not_undo_a_curated_deny(sim: Any) -> None:
    """``api_call = "allow"`` must not reopen what ``guest_delete = "deny"`` closed: the strictest named
    rule that matches the request decides, for the generic API always."""
    guest = next(g for _, g in sorted(sim.state.guests.items()) if g.status == "stopped" and not g.template)
    rules = {"guest_delete": "deny", "api_call": "allow", "destructive": "allow"}
    async with App(config(sim, {"rules": rules})) as app:
        generic = await result(
            app, "api_call", {"method": "DELETE", "path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}"}
        )
        assert generic.structured["refused"]["reason"] == "rule" and "guest_delete" in generic.text
    assert not mutations(sim) and guest.vmid in sim.state.guests


async def test_guest_files_and_passwords_are_guest_exec_s_to_give(sim: Any) -> None:
    """Writing a file into a VM, setting a user's password or reading any of its files gives the power of
    running a command there: the generic API reaches them only as guest_exec's rule allows."""
    vm = next(g for _, g in sorted(sim.state.guests.items()) if g.type == "qemu" and g.status == "running")
    base = f"/nodes/{vm.node}/qemu/{vm.vmid}/agent"
    rules = {"api_call": "allow", "api_get": "allow", "destructive": "allow"}
    async with App(config(sim, {"rules": rules})) as app:
        write = await result(
            app, "api_call", {"method": "POST", "path": f"{base}/file-write", "args": {"file": "/x", "content": "y"}}
        )
        password = await result(
            app,
            "api_call",
            {
                "method": "POST",
                "path": f"{base}/set-user-password",
                "args": {"username": "root", "password": "pw12345"},
            },
        )
        read = await result(app, "api_get", {"path": f"{base}/file-read", "args": {"file": "/etc/shadow"}})
        for refused in (write, password, read):
            assert refused.structured["refused"]["reason"] == "rule" and "guest_exec" in refused.text, refused.text
    async with App(config(sim, {"rules": {**rules, "guest_exec": "confirm"}})) as app:
        asked = await result(
            app, "api_call", {"method": "POST", "path": f"{base}/file-write", "args": {"file": "/x", "content": "y"}}
        )
        assert asked.structured["confirmation"]["required"] is True
        read = await result(app, "api_get", {"path": f"{base}/file-read", "args": {"file": "/etc/shadow"}})
        assert read.structured["refused"]["reason"] == "rule"
    assert not mutations(sim)
    assert not [r for r in sim.request_log if "/agent/file-read" in r.path]


async def test_confirm_fallback_deny_requires_elicitation(sim: Any) -> None:
    guest = running_guest(sim)
    async with App(config(sim, {"confirm_fallback": "deny"})) as app:
        refused = await result(app, "guest_stop", {"vmid": guest.vmid})
        assert refused.is_error and "cannot ask" in refused.text
    assert not mutations(sim)


def ledger_records(path: Any) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_a_token_runs_exactly_the_previewed_plan_planned_twice(sim: Any, tmp_path: Any) -> None:
    first, second = [g for _, g in sorted(sim.state.guests.items()) if g.status == "running" and not g.template][:2]
    audit = tmp_path / "audit.jsonl"
    async with App(config(sim, {"audit_log": str(audit)})) as app:
        preview = await result(app, "guest_stop", {"vmid": first.vmid})
        token = preview.structured["confirmation"]["confirm_token"]
        digest = preview.structured["confirmation"]["plan_digest"]
        # The same token for another guest: another plan. Nothing sent; a new preview for the new plan.
        swapped = await result(app, "guest_stop", {"vmid": second.vmid, "confirm_token": token})
        assert swapped.is_error and swapped.structured["refused"]["reason"] == "plan_changed"
        assert str(second.vmid) in swapped.structured["confirmation"]["question"]
        assert not mutations(sim)
        plans = app.plans_built
        done = await result(app, "guest_stop", {"vmid": first.vmid, "confirm_token": token})
        assert not done.is_error, done.text
        assert app.plans_built - plans == 1  # preview planned once, the run once more: two for the call
        assert [f"{r.method} {r.path}" for r in mutations(sim)] == [
            f"POST /nodes/{first.node}/{first.type}/{first.vmid}/status/stop"
        ]
    records = ledger_records(audit)
    ran = [r for r in records if r.get("plan_digest") == digest]
    assert [r["outcome"] for r in ran] == ["previewed", "confirmed", "succeeded"]
    assert all(r["call_id"] for r in records)
    assert [r["outcome"] for r in records].count("plan_changed") == 1


async def test_operation_rules_and_read_rules_hold_through_the_generic_tools(sim: Any) -> None:
    guest = running_guest(sim)
    stop = f"POST /nodes/{{node}}/{guest.type}/{{vmid}}/status/stop"
    async with App(config(sim, {"rules": {stop: "deny", "guest_config": "deny"}})) as app:
        curated = await result(app, "guest_stop", {"vmid": guest.vmid})
        assert curated.structured["refused"]["reason"] == "rule"
        generic = await result(
            app, "api_call", {"method": "POST", "path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/status/stop"}
        )
        assert generic.structured["refused"]["reason"] == "rule"
        read = await result(app, "api_get", {"path": f"/nodes/{guest.node}/{guest.type}/{guest.vmid}/config"})
        assert read.is_error and read.structured["refused"]["reason"] == "rule" and "guest_config" in read.text
    assert not mutations(sim)


async def test_a_backup_job_question_shows_what_the_job_does(sim: Any, tmp_path: Any) -> None:
    job_id, job = next((k, j) for k, j in sim.state.backup_jobs.items() if j.get("all"))
    audit = tmp_path / "audit.jsonl"
    async with App(config(sim, {"audit_log": str(audit)})) as app:
        preview = await result(app, "api_call", {"method": "DELETE", "path": f"/cluster/backup/{job_id}"})
        question = preview.structured["confirmation"]["question"]
        for part in (job_id, "all guests", str(job["schedule"]), str(job["storage"]), str(job["prune-backups"])):
            assert part in question, question
        dry = await result(app, "api_call", {"method": "DELETE", "path": f"/cluster/backup/{job_id}", "dry_run": True})
        assert dry.structured["dry_run"]["targets"][0]["kind"] == "backup_job"
    assert not mutations(sim)
    assert [r["outcome"] for r in ledger_records(audit)] == ["previewed", "dry_run"]


async def test_read_scope_filters_task_lists(sim: Any) -> None:
    inside = next(g for _, g in sorted(sim.state.guests.items()) if "dev" in str(g.config.get("tags")))
    outside = next(g for _, g in sorted(sim.state.guests.items()) if "prod" in str(g.config.get("tags")))
    async with App(config(sim)) as app:  # unrestricted: start both, so each has a task
        for guest in (inside, outside):
            if guest.status == "running":
                await result(app, "guest_suspend", {"vmid": guest.vmid})
            else:
                await result(app, "guest_start", {"vmid": guest.vmid})
    policy = {"scope": {"tags": ["dev"]}}
    async with App(config(sim, policy)) as app:
        tasks = await result(app, "task_list", {"limit": 500})
        ids = {str(t.get("id")) for t in tasks.structured["items"]}
        assert str(inside.vmid) in ids and str(outside.vmid) not in ids, ids
        on_node = await result(app, "task_list", {"node": outside.node, "limit": 500})
        assert str(outside.vmid) not in {str(t.get("id")) for t in on_node.structured["items"]}


async def test_curated_reads_of_out_of_scope_nodes_and_guests_are_refused(sim: Any) -> None:
    nodes = sorted({g.node for g in sim.state.guests.values()})
    outside = next(g for _, g in sorted(sim.state.guests.items()) if g.node == nodes[0] and not g.template)
    async with App(config(sim, {"scope": {"nodes": nodes[1:]}})) as app:
        status = await result(app, "node_status", {"node": nodes[0]})
        assert status.structured["refused"]["reason"] == "scope"
        content = await result(app, "storage_content", {"node": nodes[1], "storage": "local", "vmid": outside.vmid})
        assert content.structured["refused"]["reason"] == "scope"
        allowed = await result(app, "node_status", {"node": nodes[1]})
        assert not allowed.is_error, allowed.text
        for tool in ("storage_list", "task_list"):
            listed = await result(app, tool, {"node": nodes[0]})
            assert listed.structured["refused"]["reason"] == "scope", tool


async def test_a_confirmed_backup_job_is_created_as_previewed(sim: Any) -> None:
    """The job id pvemcp picks is part of the plan, so the plan built again before sending must pick the
    same one: a random id would turn every confirmed job creation into ``plan_changed``."""
    args = {"schedule": "sat 02:00", "vmid": "100,101", "storage": "local", "prune-backups": "keep-last=4"}
    async with App(config(sim)) as app:
        preview = await result(app, "backup_job_create", args)
        confirmation = preview.structured["confirmation"]
        (request,) = confirmation["requests"]
        job_id = request["body"]["id"]
        done = await result(app, "backup_job_create", {**args, "confirm_token": confirmation["confirm_token"]})
        assert not done.is_error, done.text
    assert sim.state.backup_jobs[job_id]["vmid"] == "100,101"
    assert [r.path for r in mutations(sim)] == ["/cluster/backup"]
