"""Policy configuration: the [policy] table, env overrides, strict errors that name the key."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pvemcp.core.policy.config import (
    Action,
    PolicyConfig,
    PolicyConfigError,
    check_rule_names,
    load_policy,
    parse_scope,
)
from pvemcp.core.policy.scope import Scope

EXAMPLE = """
[policy]
read_only = false
toolsets = ["guests", "snapshots"]
confirm_fallback = "deny"
confirm_ttl_s = 120
audit_log = "/var/log/pvemcp/audit.jsonl"

[policy.rules]
destructive = "deny"
guest_stop = "confirm"
write = "Confirm"

[policy.scope]
nodes = ["pve1", "pve2"]
vmids = ["100-199", 250, [300, 399]]
pools = ["agents"]
tags = ["Agent"]
"""


def test_defaults() -> None:
    c = PolicyConfig()
    assert dict(c.rules) == {"read": "allow", "write": "allow", "destructive": "confirm"}
    assert c.read_only is False
    assert c.toolsets is None
    assert c.confirm_fallback == "token"
    assert c.confirm_ttl_s == 300
    assert c.scope.unrestricted
    assert c.audit_log is None and c.audit_key_path is None
    assert PolicyConfig.from_mapping(None) == c
    assert PolicyConfig.from_mapping({}) == c


def test_full_example_from_toml() -> None:
    c = load_policy(tomllib.loads(EXAMPLE), env={})
    assert c.rules["destructive"] is Action.DENY
    assert c.rules["guest_stop"] is Action.CONFIRM
    assert c.rules["write"] is Action.CONFIRM
    assert c.rules["read"] is Action.ALLOW  # default kept
    assert c.toolsets == ("guests", "snapshots")
    assert c.confirm_fallback == "deny"
    assert c.confirm_ttl_s == 120.0
    assert c.audit_log == Path("/var/log/pvemcp/audit.jsonl")
    assert c.audit_key_path == Path("/var/log/pvemcp/audit.jsonl.key")
    assert c.scope.nodes == frozenset({"pve1", "pve2"})
    assert c.scope.vmid_ranges == ((100, 199), (250, 250), (300, 399))
    assert c.scope.pools == frozenset({"agents"})
    assert c.scope.tags == frozenset({"agent"})


def test_explicit_key_file_wins() -> None:
    c = PolicyConfig.from_mapping({"audit_log": "/a/l.jsonl", "audit_key_file": "/k/key"})
    assert c.audit_key_path == Path("/k/key")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"read_onyl": True}, "policy.read_onyl"),
        ({"read_only": "yes"}, "policy.read_only"),
        ({"read_only": 1}, "policy.read_only"),
        ({"rules": {"destructive": "maybe"}}, "policy.rules.destructive"),
        ({"rules": {"guest_stop": 1}}, "policy.rules.guest_stop"),
        ({"rules": ["allow"]}, "policy.rules"),
        ({"toolsets": "guests"}, "policy.toolsets"),
        ({"toolsets": ["guests", ""]}, "policy.toolsets"),
        ({"confirm_fallback": "elicit"}, "policy.confirm_fallback"),
        ({"confirm_ttl_s": 0}, "policy.confirm_ttl_s"),
        ({"confirm_ttl_s": -5}, "policy.confirm_ttl_s"),
        ({"confirm_ttl_s": True}, "policy.confirm_ttl_s"),
        ({"confirm_ttl_s": 10**9}, "policy.confirm_ttl_s"),
        ({"audit_log": ""}, "policy.audit_log"),
        ({"audit_log": 5}, "policy.audit_log"),
        ({"audit_key_file": ["x"]}, "policy.audit_key_file"),
        ({"scope": {"vmids": ["200-100"]}}, "policy.scope.vmids"),
        ({"scope": {"vmids": ["abc"]}}, "policy.scope.vmids"),
        ({"scope": {"vmids": [[1, 2, 3]]}}, "policy.scope.vmids"),
        ({"scope": {"vmids": "100-199"}}, "policy.scope.vmids"),
        ({"scope": {"vmids": [True]}}, "policy.scope.vmids"),
        ({"scope": {"vmids": [1], "vmid_ranges": [2]}}, "policy.scope.vmid_ranges"),
        ({"scope": {"node": ["pve1"]}}, "policy.scope.node"),
        ({"scope": {"nodes": "pve1"}}, "policy.scope.nodes"),
        ({"scope": {"pools": [1]}}, "policy.scope.pools"),
        ({"scope": ["pve1"]}, "policy.scope"),
    ],
)
def test_invalid_config_names_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(PolicyConfigError) as info:
        PolicyConfig.from_mapping(section)
    assert info.value.key == key
    assert str(info.value).startswith(key + ": ")


def test_non_table_policy() -> None:
    with pytest.raises(PolicyConfigError) as info:
        load_policy({"policy": "strict"}, env={})
    assert info.value.key == "policy"


def test_scope_forms() -> None:
    s = parse_scope({"vmids": [" 100 - 110 ", "7", 9, [20, 30]], "tags": "a;B, c"})
    assert s.vmid_ranges == ((7, 7), (9, 9), (20, 30), (100, 110))
    assert s.tags == frozenset({"a", "b", "c"})
    assert s.nodes is None and s.pools is None
    assert parse_scope({"vmid_ranges": ["5-6"]}).vmid_ranges == ((5, 6),)
    assert parse_scope({}) == Scope()


# --- environment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("YES", True), ("0", False), ("off", False)]
)
def test_env_read_only(value: str, expected: bool) -> None:
    c = load_policy({"policy": {"read_only": not expected}}, env={"PVEMCP_READ_ONLY": value})
    assert c.read_only is expected


def test_env_read_only_invalid_names_the_variable() -> None:
    with pytest.raises(PolicyConfigError) as info:
        load_policy(None, env={"PVEMCP_READ_ONLY": "maybe"})
    assert info.value.key == "PVEMCP_READ_ONLY"


def test_env_overrides() -> None:
    env = {
        "PVEMCP_AUDIT_LOG": "/tmp/x/audit.jsonl",
        "PVEMCP_AUDIT_KEY_FILE": "/tmp/x/k",
        "PVEMCP_TOOLSETS": " guests, backups ,,",
        "PVEMCP_CONFIRM_FALLBACK": "DENY",
    }
    c = load_policy({"policy": {"audit_log": "/elsewhere", "toolsets": ["api"]}}, env=env)
    assert c.audit_log == Path("/tmp/x/audit.jsonl")
    assert c.audit_key_path == Path("/tmp/x/k")
    assert c.toolsets == ("guests", "backups")
    assert c.confirm_fallback == "deny"


def test_env_toolsets_all_means_every_toolset() -> None:
    c = load_policy({"policy": {"toolsets": ["guests"]}}, env={"PVEMCP_TOOLSETS": "all"})
    assert c.toolsets is None


def test_env_invalid_fallback() -> None:
    with pytest.raises(PolicyConfigError) as info:
        load_policy(None, env={"PVEMCP_CONFIRM_FALLBACK": "ask"})
    assert info.value.key == "PVEMCP_CONFIRM_FALLBACK"


def test_empty_env_values_are_ignored() -> None:
    base = {"policy": {"read_only": True, "toolsets": ["a"], "audit_log": "/l"}}
    env = {"PVEMCP_READ_ONLY": "", "PVEMCP_TOOLSETS": " ", "PVEMCP_AUDIT_LOG": "", "PVEMCP_CONFIRM_FALLBACK": ""}
    assert load_policy(base, env=env) == load_policy(base, env={})


def test_from_mapping_env_keyword_applies_overrides() -> None:
    """core.config calls PolicyConfig.from_mapping(section, env=env)."""
    c = PolicyConfig.from_mapping({"read_only": False}, env={"PVEMCP_READ_ONLY": "1"})
    assert c.read_only is True
    assert PolicyConfig.from_mapping({"read_only": False}).read_only is False


def test_load_policy_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVEMCP_READ_ONLY", "1")
    assert load_policy({}).read_only is True


# --- unknown names: the key and the nearest valid one ---------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "nearest"),
    [
        ({"read_onyl": True}, "policy.read_onyl", "read_only"),
        ({"toolset": ["guests"]}, "policy.toolset", "toolsets"),
        ({"audit_logs": "/l"}, "policy.audit_logs", "audit_log"),
        ({"scope": {"node": ["pve1"]}}, "policy.scope.node", "nodes"),
        ({"scope": {"tag": ["a"]}}, "policy.scope.tag", "tags"),
    ],
)
def test_unknown_key_proposes_the_nearest(section: dict[str, Any], key: str, nearest: str) -> None:
    with pytest.raises(PolicyConfigError) as info:
        PolicyConfig.from_mapping(section)
    assert info.value.key == key
    assert f"(did you mean {nearest}?)" in str(info.value)


def test_unknown_key_without_a_near_name_lists_the_known_ones() -> None:
    with pytest.raises(PolicyConfigError) as info:
        PolicyConfig.from_mapping({"zzz": 1})
    assert "did you mean" not in str(info.value) and "known: audit_key_file, audit_log" in str(info.value)


TOOLS = frozenset({"guest_delete", "guest_stop", "snapshot_rollback"})
OPERATIONS = frozenset({"DELETE /nodes/{node}/qemu/{vmid}", "POST /nodes/{node}/qemu/{vmid}/status/stop"})


def _check(rules: dict[str, str]) -> None:
    check_rule_names(PolicyConfig.from_mapping({"rules": rules}), TOOLS, lambda: OPERATIONS)


def test_rule_names_that_exist_pass() -> None:
    _check({"destructive": "deny", "guest_delete": "deny", "DELETE /nodes/{node}/qemu/{vmid}": "deny"})


@pytest.mark.parametrize(
    ("name", "key", "says"),
    [
        ("guest_delet", "policy.rules.guest_delet", "(did you mean guest_delete?)"),
        ("destructiv", "policy.rules.destructiv", "(did you mean destructive?)"),
        ("teleport", "policy.rules.teleport", "no risk class (read, write, destructive) or tool is named teleport"),
        (
            "DELETE /nodes/{node}/qemu/{vmids}",
            "policy.rules.DELETE /nodes/{node}/qemu/{vmids}",
            "(did you mean DELETE /nodes/{node}/qemu/{vmid}?)",
        ),
        ("/nodes/{node}/qemu/{vmid}", "policy.rules./nodes/{node}/qemu/{vmid}", 'is "METHOD /path"'),
        ("PATCH /nodes", "policy.rules.PATCH /nodes", 'is "METHOD /path"'),
    ],
)
def test_unknown_rule_names_are_refused_with_the_nearest(name: str, key: str, says: str) -> None:
    with pytest.raises(PolicyConfigError) as info:
        _check({name: "deny"})
    assert info.value.key == key
    assert says in str(info.value)


def test_operation_rules_are_normalised() -> None:
    c = PolicyConfig.from_mapping({"rules": {" delete   /nodes/{node}/qemu/{vmid} ": "deny"}})
    assert c.rules["DELETE /nodes/{node}/qemu/{vmid}"] is Action.DENY
    check_rule_names(c, TOOLS, lambda: OPERATIONS)


def test_the_api_is_consulted_only_for_operation_rules() -> None:
    def no_spec() -> frozenset[str]:
        raise AssertionError("the API description was loaded for a config without operation rules")

    check_rule_names(PolicyConfig.from_mapping({"rules": {"guest_stop": "confirm"}}), TOOLS, no_spec)


def test_settings_report_every_key() -> None:
    c = load_policy(tomllib.loads(EXAMPLE), env={})
    settings = c.settings()
    assert set(settings) == {
        "rules",
        "read_only",
        "toolsets",
        "confirm_fallback",
        "confirm_ttl_s",
        "elicitation_timeout_s",
        "safety_snapshot",
        "scope",
        "audit_log",
        "audit_key_file",
        "state_url",
        "secret_key_file",
        "rate_limit_per_minute",
    }
    assert settings["rules"]["guest_stop"] == "confirm" and settings["toolsets"] == ["guests", "snapshots"]
    assert settings["audit_log"] == "/var/log/pvemcp/audit.jsonl"
    assert settings["scope"] == "nodes pve1, pve2; VMIDs 100-199, 250, 300-399; pools agents; tags agent"
    json.dumps(settings)  # plain JSON


def test_state_url_is_reported_without_its_password() -> None:
    c = load_policy({"policy": {"state_url": "postgresql://pvemcp:hunter2@db:5432/pvemcp"}}, env={})
    assert c.settings()["state_url"] == "postgresql://pvemcp:***@db:5432/pvemcp"
    assert "hunter2" not in str(c.settings())


def test_replica_keys_from_the_environment() -> None:
    env = {"PVEMCP_STATE_URL": "postgresql://db/pvemcp", "PVEMCP_RATE_LIMIT_PER_MINUTE": "30"}
    c = load_policy({}, env=env)
    assert c.state_url == "postgresql://db/pvemcp" and c.rate_limit_per_minute == 30


@pytest.mark.parametrize(
    ("key", "value"),
    [("state_url", "mysql://db/x"), ("state_url", 5), ("rate_limit_per_minute", 0), ("rate_limit_per_minute", "x")],
)
def test_replica_keys_refuse_bad_values(key: str, value: object) -> None:
    with pytest.raises(PolicyConfigError, match=key):
        load_policy({"policy": {key: value}}, env={})
