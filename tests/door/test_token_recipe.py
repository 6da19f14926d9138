"""``pvemcp token-recipe`` and the privilege reading behind it and ``pvemcp check``.

The recipe is computed from the schema's ``permissions``; these tests hold it to what matters: a role
with exactly its privileges lets ``check``'s estimate allow every listed tool, dropping any one of them
breaks at least one tool (nothing superfluous), the read-only recipe fits inside PVE's own PVEAuditor
role, and every ``pveum`` option is a parameter of the API call behind that sub-command.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from pvemcp.core.pve.privileges import YES, gate_check, permission_level, recipe_requirements
from pvemcp.dialect.model import load_spec
from pvemcp.door._core import App, ToolDef, load_app_config
from pvemcp.door.token_recipe import compute_recipe
from pvemcp.sim.auth import ROLES

from .helpers import REPO, python

PLACEHOLDER = {
    "PROXMOX_URL": "https://pve.invalid:8006",
    "PROXMOX_TOKEN_ID": "root@pam!placeholder",
    "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
}
# pveum sub-command -> the API operation it calls (proxmox/pve-access-control src/PVE/CLI/pveum.pm).
PVEUM_OPERATIONS = {
    ("role", "add"): "POST /access/roles",
    ("user", "add"): "POST /access/users",
    ("user", "token", "add"): "POST /access/users/{userid}/token/{tokenid}",
    ("acl", "modify"): "PUT /access/acl",
}


def _tools(read_only: bool = False) -> list[ToolDef]:
    env = {**PLACEHOLDER, **({"PVEMCP_READ_ONLY": "1"} if read_only else {})}
    return App(load_app_config(config_path=None, env=env)).tools()


def _allowed(tools: list[ToolDef], privileges: set[str]) -> set[str]:
    """The tools ``check`` would call allowed for a token holding ``privileges`` on ``/``."""
    spec = load_spec()
    granted = {"/": privileges}
    allowed = set()
    for tool in tools:
        ops = [op for op in tool.operations.values() if op]
        levels = [permission_level(spec.operation(key).permissions, granted, "pvemcp@pve!mcp") for key in ops]
        if max(levels, default=YES) == YES:
            allowed.add(tool.name)
    return allowed


@pytest.mark.parametrize("read_only", [False, True])
def test_recipe_is_enough_and_nothing_more(read_only: bool) -> None:
    tools = _tools(read_only)
    recipe = compute_recipe(tools, load_spec())
    privileges = set(recipe.privileges)
    assert recipe.root_only == []
    assert _allowed(tools, privileges) == {t.name for t in tools}
    not_gated = {p for p in privileges if _allowed(tools, privileges - {p}) == {t.name for t in tools}}
    # Not needed to pass a gate, yet needed: what a create/clone uses ("'SDN.Use' on any used bridge";
    # its storage privilege also opens storage_list's gate), checked later by the handler; and the
    # per-option privileges of a config change (the gate wants any one, the handler the one per option).
    config_rule = load_spec().operation("PUT /nodes/{node}/qemu/{vmid}/config").permissions or {}
    per_option = set(config_rule["check"][2])
    assert not_gated == (set() if read_only else {"SDN.Use"} | per_option)


def test_read_only_recipe_fits_inside_pve_auditor() -> None:
    recipe = compute_recipe(_tools(read_only=True), load_spec())
    assert set(recipe.privileges) <= ROLES["PVEAuditor"]
    assert {"VM.Audit", "Sys.Audit", "Datastore.Audit"} <= set(recipe.privileges)


def test_create_tools_are_gated_by_their_description() -> None:
    """vm_create has only a description in the schema; its gate is its first privilege sentence."""
    rule = load_spec().operation("POST /nodes/{node}/qemu").permissions
    assert rule is not None and "check" not in rule
    assert gate_check(rule) == ["perm", "/vms/{vmid}", ["VM.Allocate"]]
    auditor = {"/": set(ROLES["PVEAuditor"])}
    assert permission_level(rule, auditor, "auditor@pve!ro") != YES
    # "For restore ... VM.Backup" is a mode, not every call: not in the recipe
    assert "VM.Backup" not in {p for r in recipe_requirements(rule) for p in r.privileges}


def test_cli_prints_pveum_commands_that_match_the_api() -> None:
    done = subprocess.run(
        [python(), "-m", "pvemcp", "token-recipe", "--user", "agent@pve", "--token", "ro", "--read-only"],
        env={k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert subprocess.run(["bash", "-n"], input=done.stdout, text=True).returncode == 0
    spec = load_spec()
    commands = [shlex.split(line, comments=True) for line in done.stdout.splitlines()]
    commands = [c for c in commands if c]
    assert [c[0] for c in commands] == ["pveum"] * 5
    for words in commands:
        sub = next(k for k in PVEUM_OPERATIONS if tuple(words[1 : 1 + len(k)]) == k)
        params = set(spec.operation(PVEUM_OPERATIONS[sub]).input_schema.get("properties", {}))
        options = [w[2:] for w in words if w.startswith("--")]
        assert options and set(options) <= params, (words, params)
    assert "'agent@pve!ro'" in done.stdout  # quoted: an unquoted ! is history expansion in bash
    role = commands[0]
    assert set(role[role.index("--privs") + 1].split(",")) <= ROLES["PVEAuditor"]


def test_cli_refuses_a_malformed_user() -> None:
    done = subprocess.run(
        [python(), "-m", "pvemcp", "token-recipe", "--user", "nobody"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("key", "needed", "left_out"),
    [
        # "... on any used storage.If you use a bridge/vlan, you need 'SDN.Use'": no space after the dot
        ("POST /nodes/{node}/qemu", {"VM.Allocate", "Datastore.AllocateSpace", "SDN.Use"}, {"VM.Backup"}),
        # "For privileged containers, 'Sys.Modify' ... are required": a mode, not every call
        ("POST /nodes/{node}/lxc", {"VM.Allocate", "Datastore.AllocateSpace"}, {"VM.Backup", "Sys.Modify"}),
        # optional parameters ('prune-backups', 'bwlimit') and root-only ones are left out
        ("POST /nodes/{node}/vzdump", {"VM.Backup", "Datastore.AllocateSpace"}, {"Datastore.Allocate", "Sys.Modify"}),
        # a structured check plus "You also need ..." sentences
        ("POST /nodes/{node}/qemu/{vmid}/clone", {"VM.Clone", "VM.Allocate", "Datastore.AllocateSpace"}, set()),
        # 'todisk' is an optional parameter: its privileges are not needed for every suspend
        ("POST /nodes/{node}/qemu/{vmid}/status/suspend", {"VM.PowerMgmt"}, {"VM.Config.Disk"}),
    ],
)
def test_recipe_requirements_read_the_real_descriptions(key: str, needed: set[str], left_out: set[str]) -> None:
    rule = load_spec().operation(key).permissions
    found = {p for req in recipe_requirements(rule) for p in req.privileges}
    assert needed <= found, (key, found)
    assert not (left_out & found), (key, found)


def test_recipe_follows_the_configured_toolsets() -> None:
    done = subprocess.run(
        [python(), "-m", "pvemcp", "token-recipe"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))},
            "PVEMCP_TOOLSETS": "snapshots",
        },
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    role = next(shlex.split(line) for line in done.stdout.splitlines() if line.startswith("pveum role add"))
    # rollback accepts VM.Snapshot or VM.Snapshot.Rollback: the one the other snapshot tools need suffices
    assert set(role[role.index("--privs") + 1].split(",")) == {"VM.Audit", "VM.Snapshot"}
