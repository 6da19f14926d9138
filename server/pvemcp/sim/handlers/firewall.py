"""Firewall: cluster rules (read) and each guest's options and rules (read and edit, with digest).

Mirrors pve-firewall ``src/PVE/API2/Firewall/Rules.pm`` (``RulesBase``: ``get_rules``, ``get_rule``,
``create_rule``, ``update_rule``, ``delete_rule``) and ``src/PVE/API2/Firewall/VM.pm`` (``get_options``,
``set_options``) over the model in :mod:`pvemcp.sim.fwconfig`. The guest endpoints never check that the
guest exists: the ``.fw`` file is looked up by VMID only, as ``load_vmfw_conf`` does.
"""

from __future__ import annotations

from typing import Any

from pvemcp.dialect.formats import split_list
from pvemcp.sim.errors import fail, param_error
from pvemcp.sim.fwconfig import (
    RULE_KEYS,
    VM_OPTION_KEYS,
    FirewallConf,
    Rule,
    list_digest,
    object_digest,
    verify_rule,
)
from pvemcp.sim.handlers.common import quorate
from pvemcp.sim.routing import Call, guest_route, route

_BOOLEAN_OPTIONS = frozenset({"enable", "dhcp", "ipfilter", "macfilter", "ndp", "radv"})
_MODIFIED = "detected modified configuration - file changed by other user? Try again."


def _listing(rules: list[Rule]) -> list[dict[str, Any]]:
    """``copy_list_with_digest`` plus the positions ``get_rules`` adds."""
    digest = list_digest(rules)
    return [{**rule, "pos": pos, "digest": digest} for pos, rule in enumerate(rules)]


def _assert_digest(call: Call, current: str) -> None:
    """``PVE::Tools::assert_if_modified``: only a given, different digest fails."""
    given = call.text("digest")
    if given and given != current:
        raise fail(_MODIFIED)


@route("GET", "/cluster/firewall/rules")
def cluster_rules(call: Call) -> list[dict[str, Any]]:
    return _listing(call.sim.firewall.cluster_rules)


# ---- guest firewall -----------------------------------------------------------------------------------------


def _conf(call: Call) -> FirewallConf:
    return call.sim.firewall.guest_conf(call.sim.state, call.vmid)


def _locked_conf(call: Call) -> FirewallConf:
    """``lock_vmfw_conf`` then load: pmxcfs grants no lock without quorum (pve-cluster ``$cfs_lock``)."""
    if not quorate(call.sim.state):
        raise fail(f"cfs-lock 'firewall-vm-{call.vmid}' error: no quorum!")
    return _conf(call)


def _save(call: Call, conf: FirewallConf) -> None:
    call.sim.firewall.save_guest_conf(call.vmid, conf)
    call.sim.state.touch()


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/firewall/options")
def get_options(call: Call) -> dict[str, Any]:
    options = _conf(call).options
    return {**options, "digest": object_digest(options)}


@guest_route("PUT", "/nodes/{node}/{type}/{vmid}/firewall/options")
def set_options(call: Call) -> None:
    conf = _locked_conf(call)
    _assert_digest(call, object_digest(conf.options))
    options = dict(conf.options)
    for opt in split_list(call.text("delete") or ""):
        if opt not in VM_OPTION_KEYS:
            raise param_error({"delete": f"no such option '{opt}'"})
        options.pop(opt, None)
    for key in sorted(VM_OPTION_KEYS):
        value = call.params.get(key)
        if value is None:
            continue
        options[key] = (1 if call.flag(key) else 0) if key in _BOOLEAN_OPTIONS else str(value)
    conf.options = options
    _save(call, conf)


def _position(call: Call, rules: list[Rule]) -> int:
    pos = call.integer("pos", 0) or 0
    if pos >= len(rules):
        raise fail(f"no rule at position {pos}")
    return pos


def _copy_rule_data(rule: Rule, call: Call) -> Rule:
    """``copy_rule_data``: given properties replace the rule's, ``''`` or ``-`` remove them."""
    for key in RULE_KEYS:
        value = call.params.get(key)
        if value is None:
            continue
        text = f"{value}"
        if text in ("", "-"):
            rule.pop(key, None)
        else:
            rule[key] = int(value) if key == "enable" else text
    return rule


def _env(call: Call) -> str:
    return "vm" if "/qemu/" in call.key else "ct"


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/firewall/rules")
def get_rules(call: Call) -> list[dict[str, Any]]:
    return _listing(_conf(call).rules)


@guest_route("GET", "/nodes/{node}/{type}/{vmid}/firewall/rules/{pos}")
def get_rule(call: Call) -> dict[str, Any]:
    rules = _conf(call).rules
    pos = _position(call, rules)
    return {**rules[pos], "pos": pos, "digest": list_digest(rules)}


@guest_route("POST", "/nodes/{node}/{type}/{vmid}/firewall/rules")
def create_rule(call: Call) -> None:
    conf = _locked_conf(call)
    rule = verify_rule(_copy_rule_data({}, call), _env(call))
    # the .fw file stores only enabled or disabled ('|' prefix): what is read back is 1 or 0
    rule["enable"] = 1 if rule.get("enable") else 0
    conf.rules = [rule, *conf.rules]
    _save(call, conf)


@guest_route("PUT", "/nodes/{node}/{type}/{vmid}/firewall/rules/{pos}")
def update_rule(call: Call) -> None:
    conf = _locked_conf(call)
    rules = list(conf.rules)
    _assert_digest(call, list_digest(rules))
    pos = _position(call, rules)
    moveto = call.integer("moveto")
    if moveto is not None and moveto != pos:
        # update_rule's loop: the rule goes in front of the one that was at <moveto>, or last
        moved = rules[pos]
        reordered: list[Rule] = []
        for i, rule in enumerate(rules):
            if i == pos:
                continue
            if i == moveto:
                reordered.append(moved)
            reordered.append(rule)
        if moveto >= len(rules):
            reordered.append(moved)
        rules = reordered
    else:
        rule = _copy_rule_data(dict(rules[pos]), call)
        for opt in split_list(call.text("delete") or ""):
            if opt not in RULE_KEYS and opt not in ("pos", "digest"):
                raise param_error({"delete": f"no such property ('{opt}')"})
            if opt in ("type", "action"):
                raise param_error({"delete": f"unable to delete required property '{opt}'"})
            rule.pop(opt, None)
        rule = verify_rule(rule, _env(call))
        rule["enable"] = 1 if rule.get("enable") else 0
        rules[pos] = rule
    conf.rules = rules
    _save(call, conf)


@guest_route("DELETE", "/nodes/{node}/{type}/{vmid}/firewall/rules/{pos}")
def delete_rule(call: Call) -> None:
    conf = _locked_conf(call)
    rules = list(conf.rules)
    _assert_digest(call, list_digest(rules))
    del rules[_position(call, rules)]
    conf.rules = rules
    _save(call, conf)
