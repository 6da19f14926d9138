"""The operations of issue 13 through the official MCP client, in both protocol eras, against the simulator.

Each everyday request of the issue is one or two tool calls here, and each test checks the simulator's
state afterwards (not just the answer): "What is the IP of web-01?", "move the database VM to pve2",
"restore last night's backup of 105 as a new VM", "give it 20 GB more disk", "make this VM a template",
"was web-01 busy this morning?", "undo that change" — plus running a command, which stays refused until
the operator's policy enables it and is then confirmed with the exact command in the question.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from pvemcp.door._core import App, load_app_config
from pvemcp.door.server import build_server
from pvemcp.sim.handlers.agent import container_address
from pvemcp.sim.pending import effective_config
from pvemcp.sim.runner import RunningSimulator
from pvemcp.sim.state import config_digest, render_config

from .helpers import MODES, Answers, cluster_env, ledger, mutating, text_of

pytestmark = pytest.mark.anyio

OPS_TOOLSETS = '["guests", "snapshots", "backups", "api", "ops", "metrics", "exec"]'


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _app(sim: RunningSimulator, tmp_path: Path, rules: str = "", extra: str = "") -> AsyncIterator[App]:
    config = tmp_path / "pvemcp.toml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(
        f'[policy]\ntoolsets = {OPS_TOOLSETS}\naudit_log = "{audit}"\n{extra}\n[policy.rules]\n{rules}\n',
        encoding="utf-8",
    )
    async with App(load_app_config(config_path=config, env=cluster_env(sim))) as app:
        yield app


@pytest.fixture
async def ops_app(sim: RunningSimulator, tmp_path: Path) -> AsyncIterator[App]:
    async for app in _app(sim, tmp_path):
        yield app


@pytest.fixture
async def exec_app(sim: RunningSimulator, tmp_path: Path) -> AsyncIterator[App]:
    async for app in _app(sim, tmp_path, 'guest_exec = "confirm"'):
        yield app


async def _call(client: Client, name: str, args: dict[str, Any], *, ok: bool = True) -> types.CallToolResult:
    result = await client.call_tool(name, args)
    assert result.is_error == (not ok), f"{name}({args}): {text_of(result)}"
    assert text_of(result)
    return result


def _data(result: types.CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None
    return dict(result.structured_content.get("data") or {})


# ------------------------------------------------------------------------------------------- facts


async def test_ip_of_a_vm_and_a_container(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    """ "What is the IP of web-01?" — one call (the VM via its agent, the CT via its interfaces)."""
    ct = sim.state.guests[103]
    ct_ip = container_address(ct, "net0", str(ct.config["net0"]))
    assert ct_ip is not None
    async with Client(build_server(ops_app), mode=mode) as client:
        vm = _data(await _call(client, "guest_facts", {"vmid": 100}))
        container = _data(await _call(client, "guest_facts", {"vmid": 103}))
        no_agent = await _call(client, "guest_facts", {"vmid": 108})
        sim.sim.guest_agents.silent.add(101)
        silent = await _call(client, "guest_facts", {"vmid": 101})
        stopped = await _call(client, "guest_facts", {"vmid": 105})
    assert vm["addresses"][0]["ipv4"] == ["10.10.20.120/24"] and vm["os"]["pretty-name"].startswith("Debian")
    mac = str(sim.state.guests[100].config["net0"]).split(",")[0].split("=")[1].lower()
    assert vm["addresses"][0]["mac"] == mac
    assert container["addresses"][0]["ipv4"] == [f"{ct_ip[0]}/{ct_ip[1]}"]
    assert "No QEMU guest agent configured" in text_of(no_agent) and "qemu-guest-agent" in text_of(no_agent)
    assert "QEMU guest agent is not running" in text_of(silent)
    assert "VM 105 is not running" in text_of(stopped) and "start the VM" in text_of(stopped)
    assert mutating(sim) == []


# ------------------------------------------------------------------------------------------- exec


async def test_exec_is_off_by_default(ops_app: App, sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    """Its toolset enabled, guest_exec is still hidden, and a call is refused by the built-in rule (with
    how to enable it), audited, not mistaken for a tool that does not exist."""
    async with Client(build_server(ops_app), mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await _call(client, "guest_exec", {"vmid": 100, "command": ["id"]}, ok=False)
    assert "guest_exec" not in names and "guest_migrate" in names
    assert (refused.structured_content or {})["refused"]["reason"] == "rule"
    assert 'guest_exec = "confirm"' in text_of(refused)
    assert [r["outcome"] for r in ledger(tmp_path / "audit.jsonl") if r["tool"] == "guest_exec"] == ["denied"]
    assert mutating(sim) == []


async def test_exec_confirmed_shows_the_command_and_marks_output(
    exec_app: App, sim: RunningSimulator, tmp_path: Path, mode: str
) -> None:
    answers = Answers("accept")
    async with Client(build_server(exec_app), mode=mode, elicitation_callback=answers) as client:
        result = await _call(client, "guest_exec", {"vmid": 100, "command": ["cat", "/etc/os-release"]})
        failing = await _call(client, "guest_exec", {"vmid": 100, "command": ["sh", "-c", "nosuch --flag"]})
        container = await _call(client, "guest_exec", {"vmid": 103, "command": ["id"]}, ok=False)
    assert "run cat /etc/os-release" in answers.questions[0] and "web-01" in answers.questions[0]
    data = _data(result)
    assert data["exitcode"] == 0 and 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"' in data["stdout"]
    assert "untrusted" in data["untrusted"] and "untrusted" in text_of(result) and "PRETTY_NAME" in text_of(result)
    assert _data(failing)["exitcode"] == 127 and "not found" in _data(failing)["stderr"]
    assert "no API to run a command in a container" in text_of(container)
    assert [r.path for r in mutating(sim)] == ["/nodes/pve1/qemu/100/agent/exec"] * 2
    records = [r for r in ledger(tmp_path / "audit.jsonl") if r["tool"] == "guest_exec"]
    first = [r for r in records if r["call_id"] == records[0]["call_id"]]
    assert [r["outcome"] for r in first] == ["pending", "confirmed", "succeeded"]  # one call: asked, confirmed, sent
    assert first[1]["args"]["command"] == ["cat", "/etc/os-release"]
    assert len({r["plan_digest"] for r in first}) == 1  # what ran is the plan the user was asked about
    assert first[2]["details"]["exec"]["exitcode"] == 0


async def test_exec_declined_sends_nothing(exec_app: App, sim: RunningSimulator, mode: str) -> None:
    async with Client(build_server(exec_app), mode=mode, elicitation_callback=Answers("decline")) as client:
        result = await client.call_tool("guest_exec", {"vmid": 100, "command": ["reboot"]})
    assert result.is_error and mutating(sim) == []


async def test_exec_allow_is_not_accepted(sim: RunningSimulator, tmp_path: Path) -> None:
    from pvemcp.core.policy.config import PolicyConfigError

    with pytest.raises(PolicyConfigError, match=r"policy\.rules\.guest_exec"):
        async for _ in _app(sim, tmp_path, 'guest_exec = "allow"'):
            pass


# ------------------------------------------------------------------------------------------- migrate


async def test_migrate_vm_and_container(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    """ "move the database VM to pve2" — refused before confirmation when PVE would refuse; else one call."""
    answers = Answers("accept")
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=answers) as client:
        db = await _call(client, "guest_migrate", {"vmid": 102, "target": "pve2"}, ok=False)
        web = await _call(client, "guest_migrate", {"vmid": 100, "target": "pve2"})
        ct = await _call(client, "guest_migrate", {"vmid": 103, "target": "pve1"})
    assert "online storage migration not possible if non-replicated snapshot exists" in text_of(db)
    assert "live" in answers.questions[0] and "local-lvm:vm-100-disk-0" in answers.questions[0]
    assert "restart" in answers.questions[1]
    assert _data(web)["exitstatus"] == "OK" and _data(ct)["exitstatus"] == "OK"
    assert sim.state.guests[100].node == "pve2" and sim.state.guests[100].status == "running"
    assert sim.state.guests[103].node == "pve1" and sim.state.guests[103].status == "running"
    assert sim.state.guests[102].node == "pve1"
    sent = [r.path for r in mutating(sim)]
    assert sent == ["/nodes/pve1/qemu/100/migrate", "/nodes/pve3/lxc/103/migrate"]


async def test_migrate_offline_db_vm_after_shutdown(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    """A stopped VM whose lvmthin disk has snapshots: the task fails in PVE's words, the VM stays."""
    sim.state.guests[102].status = "stopped"
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        result = await _call(client, "guest_migrate", {"vmid": 102, "target": "pve2"}, ok=False)
    assert "migration aborted" in text_of(result)
    assert sim.state.guests[102].node == "pve1"


# ------------------------------------------------------------------------------------------- backups


async def test_restore_last_backup_as_new_vm(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    """ "restore last night's backup of 101 as a new VM" — guest_backups, then backup_restore."""
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        listing = await _call(client, "guest_backups", {"vmid": 101})
        items = (listing.structured_content or {})["items"]
        newest = items[0]["volid"]
        restored = await _call(client, "backup_restore", {"archive": newest})
    assert len(items) == 2 and items[0]["ctime"] > items[1]["ctime"] and items[0]["storage"] == "nfs-shared"
    new_vmid = _data(restored)["vmid"]
    guest = sim.state.guests[new_vmid]
    archive = sim.state.find_volume(newest, "pve2")
    assert archive is not None and archive.guest_config is not None
    assert guest.config["name"] == "web-02" and guest.config["memory"] == archive.guest_config["memory"]
    assert str(guest.config["scsi0"]).startswith(f"local-lvm:vm-{new_vmid}-disk-0")
    assert sim.state.guests[101].status == "running"  # the source guest is untouched


async def test_restore_over_an_existing_guest_names_it(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    answers = Answers("accept")
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=answers) as client:
        backup = await _call(client, "backup_now", {"vmid": 105, "storage": "local"})
        assert (backup.structured_content or {})["ok"] == 1
        archive = (await _call(client, "guest_backups", {"vmid": 105})).structured_content["items"][0]["volid"]
        sim.state.guests[105].config["memory"] = "1024"
        refused = await _call(client, "backup_restore", {"archive": archive, "vmid": 105}, ok=False)
        over = await _call(client, "backup_restore", {"archive": archive, "vmid": 105, "force": True})
    assert "force=true" in text_of(refused)
    question = answers.questions[-1]
    assert "OVER VM 105 (dev-box)" in question and "destroyed and replaced" in question
    assert _data(over)["exitstatus"] == "OK"
    assert sim.state.guests[105].config["memory"] == "2048"  # the backup's value is back


# ------------------------------------------------------------------------------------------- disks, templates


async def test_grow_disk_and_make_template(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    """ "give it 20 GB more disk", "make this VM a template"."""
    answers = Answers("accept")
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=answers) as client:
        grown = await _call(client, "disk_grow", {"vmid": 100, "size": "+20G"})
        shrink = await _call(client, "disk_grow", {"vmid": 100, "size": "10G"}, ok=False)
        template = await _call(client, "guest_template", {"vmid": 110})
        snapshotted = await _call(client, "guest_template", {"vmid": 105}, ok=False)
    assert "grow scsi0 from 32 GiB to 52 GiB" in answers.questions[0]
    assert _data(grown)["exitstatus"] == "OK" and "size=52G" in str(sim.state.guests[100].config["scsi0"])
    assert "cannot shrink" in text_of(shrink)
    assert _data(template)["exitstatus"] == "OK" and sim.state.guests[110].template
    assert "contains snapshots" in text_of(snapshotted) and not sim.state.guests[105].template


# ------------------------------------------------------------------------------------------- metrics


async def test_metrics_summary(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    """ "was web-01 busy this morning?" — one call: the day at a glance, peaks with their time."""
    async with Client(build_server(ops_app), mode=mode) as client:
        guest = await _call(client, "guest_metrics", {"vmid": 100, "timeframe": "day"})
        node = await _call(client, "node_metrics", {"node": "pve1", "timeframe": "week", "cf": "MAX"})
        stopped = await _call(client, "guest_metrics", {"vmid": 105})
    series = _data(guest)["series"]
    assert set(series) == {"cpu", "memory", "net in", "net out", "disk read", "disk write"}
    cpu = series["cpu"]
    assert cpu["raw"]["peak"] >= cpu["raw"]["avg"] > 0 and cpu["peak_at"].endswith("UTC")
    assert 0 < len(cpu["spark"]) <= 35 and set(cpu["spark"]) <= set("▁▂▃▄▅▆▇█ ")
    text = text_of(guest)
    assert "peak" in text and len(text) < 1500  # a summary, not 1440 rows
    assert "load" in _data(node)["series"]
    assert _data(stopped)["series"]["cpu"]["raw"]["peak"] == 0
    assert mutating(sim) == []


# ------------------------------------------------------------------------------------------- undo


async def test_undo_restores_the_config_byte_for_byte(
    ops_app: App, sim: RunningSimulator, tmp_path: Path, mode: str
) -> None:
    """ "undo that change" — by the call id the change's result showed.

    VM 100 runs, so the cold changes wait in [PENDING] (the config as read, pending applied, is what
    changes); the undo sets the old values back as pending ones, which Proxmox drops as no change
    (pve-guest-common AbstractConfig.pm cleanup_pending), so the file is byte for byte the old one."""
    before_file = render_config(sim.state.guests[100])

    def config() -> dict[str, Any]:
        return dict(effective_config(sim.state.guests[100], current=False))

    async with Client(build_server(ops_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        changes = {"vmid": 100, "set": {"cores": 4, "description": "tuning"}, "delete": ["onboot"]}
        change = await _call(client, "guest_config_set", changes)
        call_id = (change.structured_content or {})["results"][0]["call_id"]
        assert f"config_undo call_id={call_id}" in text_of(change)  # the text face shows it too
        assert config()["cores"] == 4 and "onboot" not in config()
        undone = await _call(client, "config_undo", {"call_id": call_id})
        assert render_config(sim.state.guests[100]) == before_file
        redo = (undone.structured_content or {})["data"]["call_id"]
        await _call(client, "config_undo", {"call_id": redo})  # the undo is itself undoable
        assert config()["cores"] == 4
        unknown = await _call(client, "config_undo", {"call_id": "chg-nope"}, ok=False)
        # a config change through the generic API tool is recorded the same way
        generic = await _call(
            client, "api_call", {"method": "PUT", "path": "/nodes/pve1/qemu/100/config", "args": {"cores": 8}}
        )
        generic_id = _data(generic)["call_id"]
        assert f"call_id={generic_id}" in text_of(generic) and config()["cores"] == 8
        await _call(client, "config_undo", {"call_id": generic_id})
        assert config()["cores"] == 4
    assert "no recorded config change" in text_of(unknown)
    # each sent change ran its after-hook once: one undo record per change, its before-state in the ledger
    undo_ids = [
        r["details"]["undo"]["call_id"]
        for r in ledger(tmp_path / "audit.jsonl")
        if r["outcome"] == "succeeded" and "undo" in (r.get("details") or {})
    ]
    # (five changes: the change, its undo, the undo of that, the generic change, its undo)
    assert len(undo_ids) == len(set(undo_ids)) == 5 and undo_ids[:2] == [call_id, redo] and undo_ids[3] == generic_id


async def test_undo_refuses_a_stale_change(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        change = await _call(client, "guest_config_set", {"vmid": 101, "set": {"cores": 3}})
        call_id = (change.structured_content or {})["results"][0]["call_id"]
        sim.state.guests[101].config["memory"] = "6144"  # somebody else changes the config meanwhile
        digest = config_digest(sim.state.guests[101])
        sent = len(mutating(sim))
        stale = await _call(client, "config_undo", {"call_id": call_id}, ok=False)
    assert "changed after" in text_of(stale) and config_digest(sim.state.guests[101]) == digest
    assert len(mutating(sim)) == sent


# ------------------------------------------------------------------------------------------- safety snapshot


async def test_safety_snapshot_before_rollback_and_delete(sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    answers = Answers("accept")
    async for app in _app(sim, tmp_path, extra="safety_snapshot = true"):
        async with Client(build_server(app), mode=mode, elicitation_callback=answers) as client:
            rollback = await _call(client, "snapshot_rollback", {"vmid": 102, "snapname": "pre_upgrade"})
            deleted = await _call(client, "guest_delete", {"vmid": 105})
    assert "safety snapshot" in answers.questions[0] and "safety backup" in answers.questions[1]
    safety = [n for n in sim.state.guests[102].snapshots if n.startswith("pvemcp_safety_")]
    assert len(safety) == 1 and sim.state.guests[102].snapshots[safety[0]].parent == "post_upgrade"
    assert "safety snapshot" in str(rollback.structured_content)
    assert 105 not in sim.state.guests and (deleted.structured_content or {})["ok"] == 1
    assert any(v.content == "backup" and v.vmid == 105 for v in sim.state.volumes.values())
    records = [r for r in ledger(tmp_path / "audit.jsonl") if r["outcome"] == "succeeded"]
    assert any("safety" in (r.get("details") or {}) for r in records)


async def test_no_safety_step_without_the_policy(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        await _call(client, "snapshot_rollback", {"vmid": 102, "snapname": "pre_upgrade"})
    assert not [n for n in sim.state.guests[102].snapshots if n.startswith("pvemcp_safety_")]


async def test_token_fallback_and_dry_run_name_what_is_at_stake(
    exec_app: App, sim: RunningSimulator, mode: str
) -> None:
    """A client without elicitation gets the preview (with the exact command) and a single-use token."""
    async with Client(build_server(exec_app), mode=mode) as client:
        restart = ["systemctl", "restart", "nginx"]
        dry = await _call(client, "guest_exec", {"vmid": 100, "command": restart, "dry_run": True})
        preview = await _call(client, "guest_exec", {"vmid": 100, "command": ["uptime"]})
        confirmation = (preview.structured_content or {})["confirmation"]
        assert mutating(sim) == []
        done = await _call(
            client, "guest_exec", {"vmid": 100, "command": ["uptime"], "confirm_token": confirmation["confirm_token"]}
        )
    requests = (dry.structured_content or {})["dry_run"]["requests"]
    assert requests[0]["body"]["command"] == restart
    assert "run uptime" in confirmation["question"]
    assert _data(done)["exitcode"] == 0 and "load average" in _data(done)["stdout"]
    assert [r.path for r in mutating(sim)] == ["/nodes/pve1/qemu/100/agent/exec"]


async def test_exec_output_is_bounded(exec_app: App, sim: RunningSimulator, mode: str) -> None:
    async with Client(build_server(exec_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        result = await _call(client, "guest_exec", {"vmid": 100, "command": ["base64"], "input-data": "x" * 20000})
    data = _data(result)
    assert data["truncated"] is True and len(data["stdout"]) == 8000
    assert "output cut to 8000 characters" in text_of(result) and len(text_of(result)) < 9000


async def test_scope_covers_the_migration_target(sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    async for app in _app(sim, tmp_path, extra='[policy.scope]\nnodes = ["pve1", "pve3"]'):
        async with Client(build_server(app), mode=mode, elicitation_callback=Answers("accept")) as client:
            refused = await _call(client, "guest_migrate", {"vmid": 100, "target": "pve2"}, ok=False)
            allowed = await _call(client, "guest_migrate", {"vmid": 100, "target": "pve3"})
    assert "outside the allowed scope" in text_of(refused)
    assert _data(allowed)["exitstatus"] == "OK" and sim.state.guests[100].node == "pve3"
    assert [r.path for r in mutating(sim)] == ["/nodes/pve1/qemu/100/migrate"]


async def test_the_generic_tool_cannot_sidestep_the_exec_rule(ops_app: App, sim: RunningSimulator, mode: str) -> None:
    args = {"method": "POST", "path": "/nodes/pve1/qemu/100/agent/exec", "args": {"command": ["id"]}}
    async with Client(build_server(ops_app), mode=mode, elicitation_callback=Answers("accept")) as client:
        refused = await _call(client, "api_call", args, ok=False)
    assert "guest_exec" in text_of(refused) and "refused by policy" in text_of(refused)
    assert mutating(sim) == []


async def test_exec_refusal_says_how_to_enable_it(sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    from pvemcp.core.policy.decision import decide
    from pvemcp.core.policy.risk_class import Risk

    async for app in _app(sim, tmp_path):
        decision = decide(app.config.policy, "guest_exec", Risk.DESTRUCTIVE)
        args = {"method": "POST", "path": "/nodes/pve1/qemu/100/agent/exec", "args": {"command": ["id"]}}
        async with Client(build_server(app), mode=mode) as client:
            refused = await _call(client, "api_call", args, ok=False)
    assert decision.denied and 'guest_exec = "confirm"' in decision.reason
    assert 'guest_exec = "confirm"' in text_of(refused)


async def test_scope_covers_ops_reads_and_a_restore_over_a_guest(
    sim: RunningSimulator, tmp_path: Path, mode: str
) -> None:
    """Scope vmids 100-104 on pve1/pve3: the reads of a guest out of it, the metrics of a node out of it,
    and a restore over an existing guest out of it (acting on that guest, though the request only
    creates: qemu-server API2/Qemu.pm create_vm, ``force`` "Allow to overwrite existing VM") are refused."""
    scope = '[policy.scope]\nvmids = ["100-104"]\nnodes = ["pve1", "pve3"]'
    archive = next(v.volid for v in sim.state.volumes.values() if v.content == "backup" and v.vmid == 101)
    async for app in _app(sim, tmp_path, extra=scope):
        async with Client(build_server(app), mode=mode, elicitation_callback=Answers("accept")) as client:
            refused = {
                "guest_backups": await _call(client, "guest_backups", {"vmid": 105}, ok=False),
                "guest_metrics": await _call(client, "guest_metrics", {"vmid": 105}, ok=False),
                "guest_facts": await _call(client, "guest_facts", {"vmid": 105}, ok=False),
                "node_metrics": await _call(client, "node_metrics", {"node": "pve2"}, ok=False),
                "backup_restore": await _call(
                    client, "backup_restore", {"archive": archive, "vmid": 105, "force": True}, ok=False
                ),
            }
            allowed = await _call(client, "node_metrics", {"node": "pve1"})
    for tool, result in refused.items():
        assert (result.structured_content or {})["refused"]["reason"] == "scope", tool
    assert "105" in text_of(refused["backup_restore"]) and "outside the allowed scope" in text_of(
        refused["guest_facts"]
    )
    assert "pve2" in text_of(refused["node_metrics"]) and "load" in _data(allowed)["series"]
    assert mutating(sim) == []


async def test_restore_over_a_guest_asks_about_that_guest(sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    """The question and the dry run of a restore over 105 name VM 105 as it is now, not a new guest."""
    archive = next(v.volid for v in sim.state.volumes.values() if v.content == "backup" and v.vmid == 101)
    args = {"archive": archive, "vmid": 105, "force": True}
    answers = Answers("decline")
    async for app in _app(sim, tmp_path):
        async with Client(build_server(app), mode=mode, elicitation_callback=answers) as client:
            dry = await _call(client, "backup_restore", {**args, "dry_run": True})
            await _call(client, "backup_restore", args, ok=False)
    targets = (dry.structured_content or {})["dry_run"]["targets"]
    assert [t["kind"] for t in targets if t["id"] == "105"] == ["guest"]
    assert "new_guest" not in {t["kind"] for t in targets}
    assert "VM 105 (dev-box) on" in answers.questions[0] and "OVER VM 105" in answers.questions[0]
    assert mutating(sim) == []


async def test_allowing_the_generic_tool_does_not_allow_exec(sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    """``api_call = "allow"`` lets the generic tool write without asking, but never run a command in a
    guest: refused while guest_exec is off, asked (here: declined) once it is on."""
    args = {"method": "POST", "path": "/nodes/pve1/qemu/100/agent/exec", "args": {"command": ["id"]}}
    async for app in _app(sim, tmp_path, 'api_call = "allow"'):
        async with Client(build_server(app), mode=mode) as client:
            off = await _call(client, "api_call", args, ok=False)
    answers = Answers("decline")
    async for app in _app(sim, tmp_path, 'api_call = "allow"\nguest_exec = "confirm"'):
        async with Client(build_server(app), mode=mode, elicitation_callback=answers) as client:
            declined = await _call(client, "api_call", args, ok=False)
    assert (off.structured_content or {})["refused"]["reason"] == "rule"
    assert (declined.structured_content or {})["refused"]["reason"] == "declined" and len(answers.questions) == 1
    assert mutating(sim) == []


async def test_hooks_run_only_when_the_request_is_sent(sim: RunningSimulator, tmp_path: Path, mode: str) -> None:
    """A dry run, a token preview or a declined question runs no safety step and records no undo."""
    async for app in _app(sim, tmp_path, extra="safety_snapshot = true"):
        rollback = {"vmid": 102, "snapname": "pre_upgrade"}
        async with Client(build_server(app), mode=mode, elicitation_callback=Answers("decline")) as client:
            dry = await _call(client, "snapshot_rollback", {**rollback, "dry_run": True})
            await _call(client, "snapshot_rollback", rollback, ok=False)
            await _call(client, "guest_config_set", {"vmid": 101, "set": {"cores": 3}, "dry_run": True})
        async with Client(build_server(app), mode=mode) as client:
            preview = await _call(client, "snapshot_rollback", rollback)
    assert "a safety snapshot is taken first" in (dry.structured_content or {})["dry_run"]["notes"]
    assert "a safety snapshot is taken first" in (preview.structured_content or {})["confirmation"]["question"]
    assert mutating(sim) == [] and not [n for n in sim.state.guests[102].snapshots if n.startswith("pvemcp_")]
    assert not [r for r in ledger(tmp_path / "audit.jsonl") if "undo" in (r.get("details") or {})]
