"""The effective policy: every catalog tool is either listed or hidden with the reason, and the rest
of what is in force (rules, scope, confirmation, audit log) is said the same way to check and to the model.

No network: the cluster is a placeholder that is never contacted (the PVE version is the resource's,
tested through the MCP client in tests/door/test_policy_resource.py).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pvemcp.core.app import App
from pvemcp.core.config import load_app_config
from pvemcp.core.policy.config import PolicyConfigError
from pvemcp.core.policy.effective import audit_status, check_names, describe_policy, preflight
from pvemcp.core.policy.ledger import AuditLedger, LedgerError, default_head_path
from pvemcp.core.policy.risk_class import Risk
from pvemcp.core.tools.base import CallContext, ToolResult

CLUSTER = """
[clusters.prod]
url = "https://pve.invalid:8006"
token_id = "pvemcp@pve!mcp"
token_secret = "never-sent"
"""


def app_from(tmp_path: Path, policy: str = "", **env: str) -> App:
    path = tmp_path / "pvemcp.toml"
    path.write_text(CLUSTER + policy)
    return App(load_app_config(path, env=env))


def test_defaults(tmp_path: Path) -> None:
    app = app_from(tmp_path)
    policy = describe_policy(app)
    assert policy["tools"]["listed"] == [t.name for t in app.tools()]
    # only the opt-in toolsets' tools are hidden, each saying which toolset to enable
    defaults = ", ".join(app.catalog.default_toolsets)
    opt_in = {t.name: t.toolset for t in app.catalog.tools.values() if t.toolset not in app.catalog.default_toolsets}
    assert opt_in and set(opt_in) >= {"guest_exec", "guest_migrate", "node_metrics"}
    assert policy["tools"]["hidden"] == {
        name: f"toolset {toolset} is not enabled (the default toolsets: {defaults})" for name, toolset in opt_in.items()
    }
    assert policy["read_only"] is False
    assert policy["toolsets"]["enabled"] == list(app.catalog.default_toolsets)
    assert policy["rules"] == {"read": "allow", "write": "allow", "destructive": "confirm"}
    assert policy["scope"] == {"unrestricted": True}
    assert policy["confirmation"]["required_for"] == ["destructive"]
    assert "MCP elicitation" in policy["confirmation"]["method"] and "confirm_token" in policy["confirmation"]["method"]
    assert policy["audit"] == {"log": None, "ok": True, "detail": policy["audit"]["detail"]}
    assert policy["audit"]["detail"].startswith("off")
    assert "pve" not in policy
    json.dumps(policy)


@pytest.mark.anyio
async def test_a_tool_whose_every_operation_is_denied_is_hidden_and_refused(tmp_path: Path) -> None:
    """guest_delete reaches two operations; denying both by operation rules hides it (listing, policy view)
    and a call of it is refused by policy, not unknown; with one left open it stays listed."""
    both = '[policy.rules]\n"DELETE /nodes/{node}/qemu/{vmid}" = "deny"\n"DELETE /nodes/{node}/lxc/{vmid}" = "deny"\n'
    app = app_from(tmp_path, both)
    assert set(app.catalog.tools["guest_delete"].operations.values()) == {
        "DELETE /nodes/{node}/qemu/{vmid}",
        "DELETE /nodes/{node}/lxc/{vmid}",
    }
    assert app.tool("guest_delete") is None
    why = describe_policy(app)["tools"]["hidden"]["guest_delete"]
    assert "DELETE /nodes/{node}/" in why and "deny" in why, why
    refused = await app.call("guest_delete", {"vmid": 100}, CallContext(caller="test"))
    assert isinstance(refused, ToolResult) and refused.structured["refused"]["reason"] == "rule", refused
    assert app.tool("guest_start") is not None  # other tools are untouched

    one = app_from(tmp_path, "[policy.rules]\n" + '"DELETE /nodes/{node}/qemu/{vmid}" = "deny"\n')
    assert one.tool("guest_delete") is not None  # containers can still be deleted
    assert "guest_delete" not in describe_policy(one)["tools"]["hidden"]


def test_read_only_hides_every_mutating_tool_and_says_so(tmp_path: Path) -> None:
    app = app_from(tmp_path, "[policy]\nread_only = true\n")
    policy = describe_policy(app)
    hidden = policy["tools"]["hidden"]
    defaults = app.catalog.default_toolsets
    mutating = {t.name for t in app.catalog.tools.values() if t.listing_risk is not Risk.READ}
    opt_in = {t.name for t in app.catalog.tools.values() if t.toolset not in defaults}
    assert set(hidden) == mutating | opt_in
    assert hidden["guest_delete"] == "read_only: destructive tools are hidden and refused"
    # a tool of a toolset that is not enabled says so first (enabling it would still leave it read-only)
    assert all(why.startswith("read_only") for name, why in hidden.items() if name not in opt_in)
    assert all(hidden[name].startswith("toolset ") for name in opt_in)
    assert "guest_delete" not in policy["tools"]["listed"]


def test_toolsets_and_deny_rules_name_what_hides_each_tool(tmp_path: Path) -> None:
    app = app_from(
        tmp_path,
        '[policy]\ntoolsets = ["guests", "tasks"]\nconfirm_fallback = "deny"\n'
        '[policy.rules]\nguest_delete = "deny"\nsnapshot_rollback = "deny"\nguest_stop = "confirm"\n'
        '[policy.scope]\nvmids = ["100-199"]\ntags = ["dev"]\n',
    )
    check_names(app)  # a rule for a tool of a toolset that is not enabled is legitimate
    policy = describe_policy(app)
    hidden, listed = policy["tools"]["hidden"], policy["tools"]["listed"]
    assert hidden["guest_delete"] == "guest_delete is denied (policy rule guest_delete = deny)"
    assert hidden["snapshot_list"] == "toolset snapshots is not enabled (policy.toolsets: guests, tasks)"
    assert "task_list" in listed and "guest_stop" in listed
    # no tool vanishes: every tool of the catalog is listed or hidden, never both
    assert set(listed) | set(hidden) == set(app.catalog.tools) and not set(listed) & set(hidden)
    assert policy["confirmation"]["required_for"] == ["destructive", "guest_stop"]
    assert "refused (confirm_fallback = deny)" in policy["confirmation"]["method"]
    assert policy["scope"] == {
        "unrestricted": False,
        "summary": "VMIDs 100-199; tags dev",
        "vmids": ["100-199"],
        "tags": ["dev"],
    }


def test_unknown_toolset_is_refused_with_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(PolicyConfigError) as info:
        check_names(app_from(tmp_path, '[policy]\ntoolsets = ["guests", "snapshot"]\n'))
    assert info.value.key == "policy.toolsets" and "unknown toolset snapshot (did you mean snapshots?)" in str(
        info.value
    )


def test_rules_are_checked_against_the_real_catalog_and_api(tmp_path: Path) -> None:
    good = '[policy.rules]\n"DELETE /nodes/{node}/lxc/{vmid}" = "deny"\ntask_stop = "confirm"\n'
    check_names(app_from(tmp_path, good))
    with pytest.raises(PolicyConfigError, match=r"did you mean guest_delete\?"):
        check_names(app_from(tmp_path, '[policy.rules]\nguest_delet = "deny"\n'))
    with pytest.raises(PolicyConfigError, match=r"did you mean DELETE /nodes/\{node\}/lxc/\{vmid\}\?"):
        check_names(app_from(tmp_path, '[policy.rules]\n"DELETE /nodes/{node}/lxc/{vmi}" = "deny"\n'))


def test_audit_log_in_a_missing_directory_is_created_at_start(tmp_path: Path) -> None:
    log = tmp_path / "var" / "log" / "pvemcp" / "audit.jsonl"
    app = app_from(tmp_path, PVEMCP_AUDIT_LOG=str(log))
    status = describe_policy(app)["audit"]
    assert status["ok"] and status["detail"] == "its directory will be created" and not log.parent.exists()
    preflight(app)
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700 and default_head_path(log).is_file()
    assert audit_status(app.config.policy)["detail"] == "writable"


def test_audit_log_that_cannot_be_created_is_reported_and_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("a file where a directory should be")
    log = tmp_path / "var" / "log" / "audit.jsonl"
    app = app_from(tmp_path, PVEMCP_AUDIT_LOG=str(log))
    status = describe_policy(app)["audit"]
    assert status["ok"] is False and f"cannot create the directory {log.parent}" in status["detail"]
    with pytest.raises(ValueError, match="PVEMCP_AUDIT_LOG"):
        preflight(app)


def test_audit_log_behind_its_anchor_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditLedger(log) as ledger:
        ledger.append("allowed", tool="t")
        ledger.append("allowed", tool="t")
    log.write_bytes(log.read_bytes().splitlines(keepends=True)[0])
    status = audit_status(app_from(tmp_path, PVEMCP_AUDIT_LOG=str(log)).config.policy)
    assert status["ok"] is False and "records were removed" in status["detail"]
    with pytest.raises(LedgerError):
        preflight(app_from(tmp_path, PVEMCP_AUDIT_LOG=str(log)))
