"""Policy decisions: class defaults, tool overrides, read-only, fail-closed risks, listing."""

from __future__ import annotations

import pytest

from pvemcp.core.policy.config import Action, PolicyConfig
from pvemcp.core.policy.decision import confirmation_method, decide, strictest
from pvemcp.core.policy.risk_class import Risk, parse_risk


def cfg(**section: object) -> PolicyConfig:
    return PolicyConfig.from_mapping(section)


@pytest.mark.parametrize(
    ("risk", "action"),
    [(Risk.READ, Action.ALLOW), (Risk.WRITE, Action.ALLOW), (Risk.DESTRUCTIVE, Action.CONFIRM)],
)
def test_defaults(risk: Risk, action: Action) -> None:
    d = decide(PolicyConfig(), "any_tool", risk)
    assert d.action is action
    assert d.risk is risk
    assert d.rule == f"risk:{risk.value}"


@pytest.mark.parametrize("risk", ["unknown", "", "DESTROY", None])
def test_unknown_risk_is_destructive(risk: object) -> None:
    d = decide(PolicyConfig(), "t", risk)  # type: ignore[arg-type]
    assert d.risk is Risk.DESTRUCTIVE
    assert d.needs_confirmation


def test_risk_words_are_parsed_at_the_edge() -> None:
    assert decide(PolicyConfig(), "t", parse_risk("read")).allowed
    assert decide(PolicyConfig(), "t", parse_risk("Destructive")).needs_confirmation


def test_class_rules() -> None:
    c = cfg(rules={"write": "confirm", "destructive": "deny"})
    assert decide(c, "t", Risk.WRITE).needs_confirmation
    d = decide(c, "t", Risk.DESTRUCTIVE)
    assert d.denied and "destructive = deny" in d.reason


def test_tool_rule_wins_over_class() -> None:
    c = cfg(rules={"destructive": "deny", "guest_stop": "allow", "read": "allow", "vm_list": "deny"})
    stop = decide(c, "guest_stop", Risk.DESTRUCTIVE)
    assert stop.allowed and stop.rule == "tool:guest_stop" and "guest_stop = allow" in stop.reason
    assert decide(c, "guest_delete", Risk.DESTRUCTIVE).denied
    assert decide(c, "vm_list", Risk.READ).denied
    c2 = cfg(rules={"snapshot_create": "confirm"})
    assert decide(c2, "snapshot_create", Risk.WRITE).needs_confirmation


def test_read_only_beats_everything() -> None:
    c = cfg(read_only=True, rules={"guest_stop": "allow", "write": "allow", "destructive": "allow"})
    for risk in (Risk.WRITE, Risk.DESTRUCTIVE, "garbage"):
        d = decide(c, "guest_stop", risk)  # type: ignore[arg-type]  # "garbage": fails closed at run time too
        assert d.denied and d.rule == "read_only" and "read-only" in d.reason
    assert decide(c, "guest_list", Risk.READ).allowed


def test_read_only_does_not_unblock_denied_reads() -> None:
    c = cfg(read_only=True, rules={"secrets": "deny"})
    assert decide(c, "secrets", Risk.READ).denied


@pytest.mark.parametrize(
    ("fallback", "elicit", "expected"),
    [("token", True, "elicit"), ("deny", True, "elicit"), ("token", False, "token"), ("deny", False, "deny")],
)
def test_confirmation_method(fallback: str, elicit: bool, expected: str) -> None:
    assert confirmation_method(cfg(confirm_fallback=fallback), elicitation_supported=elicit) == expected


STOP = "POST /nodes/{node}/qemu/{vmid}/status/stop"


def test_a_curated_tools_rule_governs_its_operation_through_the_generic_api() -> None:
    c = cfg(rules={"guest_delete": "deny", "guest_stop": "allow"})
    delete = "DELETE /nodes/{node}/qemu/{vmid}"
    d = decide(c, "api_call", Risk.DESTRUCTIVE, operation=delete, drivers=["guest_delete"], generic=True)
    assert d.denied and d.rule == "tool:guest_delete" and "guest_delete" in d.reason
    assert decide(c, "api_call", Risk.DESTRUCTIVE, operation=STOP, drivers=["guest_stop"], generic=True).allowed
    # Without a driver's rule the risk class decides.
    assert decide(c, "api_call", Risk.DESTRUCTIVE, operation=STOP, drivers=[], generic=True).needs_confirmation


def test_the_generic_tools_own_allow_does_not_override_a_drivers_deny() -> None:
    c = cfg(rules={"guest_delete": "deny", "api_call": "allow", "guest_stop": "confirm"})
    delete = "DELETE /nodes/{node}/qemu/{vmid}"
    d = decide(c, "api_call", Risk.DESTRUCTIVE, operation=delete, drivers=["guest_delete"], generic=True)
    assert d.denied and d.rule == "tool:guest_delete"
    assert decide(
        c, "api_call", Risk.DESTRUCTIVE, operation=STOP, drivers=["guest_stop"], generic=True
    ).needs_confirmation
    # where no curated tool has a rule, the generic tool's own rule decides
    assert decide(c, "api_call", Risk.DESTRUCTIVE, operation=STOP, drivers=[], generic=True).allowed
    # a curated tool is governed by its own rule, not by another driver of the same operation: vm_create sends
    # no archive, so denying restores must not stop creating VMs, whether vm_create has a rule or not
    create = "POST /nodes/{node}/qemu"
    own = cfg(rules={"backup_restore": "deny", "vm_create": "allow"})
    assert decide(own, "vm_create", Risk.WRITE, operation=create, drivers=["vm_create", "backup_restore"]).allowed
    alone = cfg(rules={"backup_restore": "deny"})
    d = decide(alone, "vm_create", Risk.WRITE, operation=create, drivers=["vm_create", "backup_restore"])
    assert d.allowed and d.rule == "risk:write", d
    # ... while the generic API reaching that operation is still bound by it
    assert decide(
        alone, "api_call", Risk.WRITE, operation=create, drivers=["vm_create", "backup_restore"], generic=True
    ).denied


def test_operation_rule_wins_over_tool_and_class_and_the_strictest_driver_wins() -> None:
    c = cfg(rules={STOP: "deny", "guest_stop": "allow", "a": "confirm", "b": "deny"})
    d = decide(c, "guest_stop", Risk.DESTRUCTIVE, operation=STOP, drivers=["guest_stop"])
    assert d.denied and d.rule == f"operation:{STOP}"
    other = "POST /nodes/{node}/qemu/{vmid}/status/start"
    assert decide(c, "api_call", Risk.WRITE, operation=other, drivers=["a", "b"], generic=True).denied
    assert decide(c, "api_call", Risk.WRITE, operation=other, drivers=["a"], generic=True).needs_confirmation


def test_read_only_beats_operation_rules() -> None:
    c = cfg(read_only=True, rules={STOP: "allow"})
    assert decide(c, "api_call", Risk.DESTRUCTIVE, operation=STOP).rule == "read_only"


def test_strictest() -> None:
    allow = decide(PolicyConfig(), "t", Risk.WRITE)
    confirm = decide(PolicyConfig(), "t", Risk.DESTRUCTIVE)
    assert strictest([allow, confirm, allow]) is confirm
    assert strictest([]) is None


def test_elicitation_timeout_is_a_policy_key() -> None:
    assert PolicyConfig().elicitation_timeout_s == 300
    assert cfg(elicitation_timeout_s=30).elicitation_timeout_s == 30
    with pytest.raises(ValueError, match=r"policy\.elicitation_timeout_s"):
        cfg(elicitation_timeout_s=0)


def test_no_rule_runs_a_command_in_a_guest_unasked() -> None:
    """guest_exec is off until named, and confirmed once on, however its operation is reached."""
    exec_op = "POST /nodes/{node}/qemu/{vmid}/agent/exec"
    allow_generic = cfg(rules={"api_call": "allow", exec_op: "allow"})
    off = decide(allow_generic, "api_call", Risk.DESTRUCTIVE, operation=exec_op, drivers=["guest_exec"])
    assert off.denied and 'guest_exec = "confirm"' in off.reason
    assert decide(allow_generic, "guest_exec", Risk.DESTRUCTIVE, operation=exec_op, drivers=["guest_exec"]).denied
    on = cfg(rules={"guest_exec": "confirm", "api_call": "allow", exec_op: "allow", "destructive": "allow"})
    for tool in ("api_call", "guest_exec"):
        d = decide(on, tool, Risk.DESTRUCTIVE, operation=exec_op, drivers=["guest_exec"])
        assert d.needs_confirmation, (tool, d)
    # the floor holds only where guest_exec is involved
    assert decide(on, "api_call", Risk.DESTRUCTIVE, operation=STOP, drivers=["guest_stop"]).allowed
