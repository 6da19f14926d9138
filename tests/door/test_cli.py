"""The door's CLI commands as a user runs them: ``pvemcp tools | call | check | demo --tour``."""

from __future__ import annotations

import json
import os
import subprocess

import anyio
import pytest

from budgets import TOOL_LIST_BUDGET
from pvemcp.door._core import App, load_app_config
from pvemcp.door.server import compact_tool_payload, tool_to_wire
from pvemcp.sim.runner import RunningSimulator

from .helpers import REPO, guest_with, mutating, python, subprocess_env


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python(), "-m", "pvemcp", *args],
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


async def _arun(sim: RunningSimulator, *args: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI while this process keeps serving the simulator (hence async)."""
    return await anyio.run_process(
        [python(), "-m", "pvemcp", *args], env=subprocess_env(sim, **extra), check=False, stdin=subprocess.DEVNULL
    )


def test_tools_size_matches_the_payload_and_fits_the_budget() -> None:
    done = _run("tools", "--size")
    assert done.returncode == 0, done.stderr
    size = int(done.stdout.strip())
    placeholder = {
        "PROXMOX_URL": "https://pve.invalid:8006",
        "PROXMOX_TOKEN_ID": "root@pam!placeholder",
        "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
    }
    tools = App(load_app_config(config_path=None, env=placeholder)).tools()
    assert size == len(compact_tool_payload([tool_to_wire(t) for t in tools]))
    assert size <= TOOL_LIST_BUDGET


def test_tools_json_and_table() -> None:
    listed = _run("tools", "--json")
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    tools = payload["tools"]
    assert tools and all({"name", "title", "inputSchema", "outputSchema", "annotations"} <= set(t) for t in tools)
    assert all(len(t["annotations"]) == 4 for t in tools)
    table = _run("tools")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TOOL", "RISK", "TITLE"]
    assert len(lines) == len(tools) + 1
    assert any(line.split()[:2] == ["guest_stop", "destructive"] for line in lines)


def test_tools_read_only_hides_mutating_tools() -> None:
    done = _run("tools", "--json", env={**_clean_env(), "PVEMCP_READ_ONLY": "1"})
    assert done.returncode == 0, done.stderr
    tools = {t["name"]: t for t in json.loads(done.stdout)["tools"]}
    assert "guest_list" in tools and "guest_stop" not in tools and "guest_start" not in tools
    # only reads are listed: the generic read tool stays, the generic write tool goes
    assert "api_get" in tools and "api_call" not in tools
    assert all(t["annotations"]["readOnlyHint"] for t in tools.values())


@pytest.mark.anyio
async def test_call_read_write_and_errors(sim: RunningSimulator) -> None:
    listed = await _arun(sim, "call", "guest_list", '{"type": "lxc"}')
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["total"] >= 1 and all(g["type"] == "lxc" for g in data["items"])

    stopped = guest_with(sim, status="stopped")
    started = await _arun(sim, "call", "guest_start", json.dumps({"vmid": stopped}))
    assert started.returncode == 0, started.stderr
    assert sim.state.guests[stopped].status == "running"

    invalid = await _arun(sim, "call", "guest_status", '{"vmid": "abc"}')
    assert invalid.returncode == 1
    assert b"vmid" in invalid.stderr
    unknown = await _arun(sim, "call", "guest_teleport", "{}")
    assert unknown.returncode == 2
    not_json = await _arun(sim, "call", "guest_list", "{nope")
    assert not_json.returncode == 2
    assert len(mutating(sim)) == 1


@pytest.mark.anyio
async def test_call_destructive_without_terminal_prints_the_preview(sim: RunningSimulator) -> None:
    vmid = guest_with(sim, status="running")
    preview = await _arun(sim, "call", "guest_stop", json.dumps({"vmid": vmid}))
    assert preview.returncode == 3, preview.stderr
    confirmation = json.loads(preview.stdout)["confirmation"]
    assert str(vmid) in confirmation["question"] and confirmation["confirm_token"]
    assert confirmation["requests"][0]["method"] == "POST"
    assert mutating(sim) == []
    assert sim.state.guests[vmid].status == "running"
    assert sim.token_secret.encode() not in preview.stdout + preview.stderr


@pytest.mark.anyio
async def test_call_with_yes_lets_the_operator_confirm(sim: RunningSimulator) -> None:
    vmid = guest_with(sim, status="running")
    done = await _arun(sim, "call", "guest_stop", json.dumps({"vmid": vmid}), "--yes")
    assert done.returncode == 0, done.stderr
    assert b"confirmed by --yes" in done.stderr
    assert [r.method for r in mutating(sim)] == ["POST"]
    assert sim.state.guests[vmid].status == "stopped"


@pytest.mark.anyio
async def test_check_reports_each_step(sim: RunningSimulator) -> None:
    good = await _arun(sim, "check")
    assert good.returncode == 0, good.stdout + good.stderr
    out = good.stdout.decode()
    for step in ("reachable", "tls", "auth", "version", "privileges"):
        assert f"ok   {step}" in out, out
    assert "Proxmox VE" in out

    auditor = await _arun(
        sim, "check", PROXMOX_TOKEN_ID=sim.readonly_token_id, PROXMOX_TOKEN_SECRET=sim.readonly_token_secret
    )
    assert auditor.returncode == 0
    privileges = next(line for line in auditor.stdout.decode().splitlines() if "privileges" in line)
    allowed, _, refused = privileges.partition("not allowed:")
    # vm_create and ct_create have no schema check (the handler checks VM.Allocate itself): the gate
    # comes from their permission description, so a read-only token is not told it may create guests.
    for tool in ("guest_stop", "vm_create", "ct_create", "guest_delete", "backup_now", "task_stop"):
        assert tool in refused and tool not in allowed, privileges
    for tool in ("guest_list", "guest_status", "storage_list", "task_log", "cluster_status"):
        assert tool in allowed, privileges

    wrong_secret = await _arun(sim, "check", PROXMOX_TOKEN_SECRET="00000000-0000-0000-0000-000000000000")
    assert wrong_secret.returncode == 1
    assert "FAIL auth" in wrong_secret.stdout.decode()

    wrong_pin = await _arun(sim, "check", PROXMOX_FINGERPRINT=":".join(["AB"] * 32))
    assert wrong_pin.returncode == 1
    assert "FAIL tls" in wrong_pin.stdout.decode()
    for done in (good, auditor, wrong_secret, wrong_pin):
        assert sim.token_secret.encode() not in done.stdout + done.stderr
    assert mutating(sim) == []


@pytest.mark.anyio
async def test_check_unreachable(sim: RunningSimulator) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    done = await _arun(sim, "check", PROXMOX_URL=f"https://127.0.0.1:{port}")
    assert done.returncode == 1
    assert "FAIL reachable" in done.stdout.decode()


def test_config_error_is_reported_cleanly() -> None:
    done = _run("call", "guest_list")
    assert done.returncode == 2
    assert "PROXMOX_URL" in done.stderr and "Traceback" not in done.stderr


def test_demo_tour_passes() -> None:
    done = _run("demo", "--tour", "--http", "127.0.0.1:0")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].endswith("0 failed")
    assert not [line for line in lines if line.startswith("FAIL")]
    assert sum(line.startswith("ok ") for line in lines) >= 10
