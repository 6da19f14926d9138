"""The policy decision for one call: allow, confirm or deny, and why.

Order of precedence, strongest first:

1. ``read_only``: anything that is not ``read`` is denied, whatever the rules say (an operator who
   turned read-only on must not be overridden by a forgotten ``tool = "allow"``).
2. The named rules that match, the strictest of them: a rule for the operation, named ``"METHOD /path"``
   as in the API schema (``"DELETE /nodes/{node}/qemu/{vmid}" = "deny"``); a rule for the tool's name
   (some tools have a built-in one, ``DEFAULT_TOOL_RULES``: guest_exec is off until the operator names
   it); and, for the generic API only, the rules (operator's or built-in) of the curated tools that
   drive the same operation (``guest_delete = "deny"`` holds when ``api_call`` reaches
   ``DELETE /nodes/{node}/qemu/{vmid}``, even with ``api_call = "allow"``). A curated tool is not bound
   by another curated tool's rule: it sends only its own parameters.
3. The rule for the risk class (defaults: read=allow, write=allow, destructive=confirm).

Over all of these, a floor: a request that a tool of ``ALWAYS_CONFIRMED`` (guest_exec) makes, or drives,
is denied while that tool is off and confirmed at least once it is on, whatever rule matched above.

The App decides once per request of a plan and keeps the strictest decision for the call.

Risks that are not one of the three classes count as ``destructive`` (fail closed).

Scope is not decided here: a call with any target out of scope is refused before this point (see
:mod:`pvemcp.core.policy.scope`). Confirmation itself is the door's (elicitation) or
:mod:`pvemcp.core.policy.confirm`'s (token); :func:`confirmation_method` says which to use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pvemcp.core.policy.config import ALWAYS_CONFIRMED, DEFAULT_TOOL_RULES, Action, PolicyConfig
from pvemcp.core.policy.risk_class import Risk, parse_risk

__all__ = ["ConfirmVia", "Decision", "confirmation_method", "decide", "strictest"]


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`decide`; ``rule`` says which setting produced it (for previews and the ledger)."""

    action: Action
    risk: Risk
    reason: str
    rule: str

    @property
    def allowed(self) -> bool:
        return self.action is Action.ALLOW

    @property
    def needs_confirmation(self) -> bool:
        return self.action is Action.CONFIRM

    @property
    def denied(self) -> bool:
        return self.action is Action.DENY


_VERB = {Action.ALLOW: "are allowed", Action.CONFIRM: "need confirmation", Action.DENY: "are denied"}
_TOOL_VERB = {Action.ALLOW: "is allowed", Action.CONFIRM: "needs confirmation", Action.DENY: "is denied"}


_STRICTNESS = {Action.ALLOW: 0, Action.CONFIRM: 1, Action.DENY: 2}


def strictest(decisions: Iterable[Decision]) -> Decision | None:
    """The decision that restrains most (deny > confirm > allow); the riskier one on a tie."""
    best: Decision | None = None
    for d in decisions:
        if best is None or (_STRICTNESS[d.action], d.risk.rank) > (_STRICTNESS[best.action], best.risk.rank):
            best = d
    return best


def decide(
    config: PolicyConfig,
    tool: str,
    risk: Risk,
    *,
    operation: str | None = None,
    drivers: Iterable[str] = (),
    generic: bool = False,
) -> Decision:
    """Decide what to do with one request of ``tool`` whose (effective) risk is ``risk``.

    For the generic API tool, pass the risk of the concrete call
    (:func:`~pvemcp.core.policy.risk.classify_call`); for a curated tool, the higher of its declared
    risk and its calls' risks (:func:`~pvemcp.core.policy.risk.max_risk`). ``operation`` is the
    request's ``"METHOD /path-template"``; ``drivers`` the curated tools that drive that operation;
    ``generic``: the tool is the generic API, bound by every matching rule (the strictest wins).
    Anything that is not a :class:`Risk` counts as ``destructive`` (fail closed).
    """
    r = parse_risk(risk)
    decision = _decide(config, tool, r, operation, drivers, generic)
    return strictest([decision, *_always_confirmed(config, tool, r, operation, drivers)]) or decision


def listing_decision(config: PolicyConfig, tool: str, risk: Risk, operations: Iterable[str] = ()) -> Decision:
    """Whether a tool is listed (denied: hidden, and a call of it refused by policy, not unknown).

    The tool's own rule and risk class decide, and for a curated tool its ``operations`` too: one whose
    every operation an operation rule denies (``"DELETE /nodes/{node}/qemu/{vmid}" = "deny"`` and its lxc
    twin, for ``guest_delete``) could do nothing but be refused, so it is hidden like a denied tool. One
    operation left open keeps it listed. The generic tools pass no operations: they reach any.
    """
    decision = decide(config, tool, risk)
    per_operation = [decide(config, tool, risk, operation=op) for op in dict.fromkeys(operations)]
    if decision.denied or not per_operation or not all(d.denied for d in per_operation):
        return decision
    return strictest(per_operation) or decision


def _always_confirmed(
    config: PolicyConfig, tool: str, r: Risk, operation: str | None, drivers: Iterable[str]
) -> list[Decision]:
    """The floor of the tools that are never run unasked (``ALWAYS_CONFIRMED``: guest_exec): their rule
    (the operator's, else the built-in deny), and at least a confirmation, whoever reaches their
    operation — so ``api_call = "allow"`` or an operation rule cannot run a command in a guest unasked."""
    floor = []
    for name in sorted({tool, *drivers} & ALWAYS_CONFIRMED):
        rule = _tool_rule(config, name) or Action.CONFIRM
        action = Action.DENY if rule is Action.DENY else Action.CONFIRM
        named = name in config.rules
        how = f"policy rule {name} = {rule.value}" if named else f'[policy.rules] {name} = "confirm" enables it'
        what = f"{operation} is what {name} does: " if operation is not None and name != tool else ""
        floor.append(Decision(action, r, f"{what}{name} {_TOOL_VERB[action]}, always ({how})", f"tool:{name}"))
    return floor


def _decide(
    config: PolicyConfig, tool: str, r: Risk, operation: str | None, drivers: Iterable[str], generic: bool
) -> Decision:
    if config.read_only and r is not Risk.READ:
        return Decision(
            Action.DENY, r, f"the server is read-only: {r.value} calls are refused (read_only)", "read_only"
        )
    named: list[Decision] = []
    if operation is not None and operation in config.rules:
        action = Action(config.rules[operation])
        reason = f"{operation} {_TOOL_VERB[action]} (policy rule {operation!r} = {action.value})"
        named.append(Decision(action, r, reason, f"operation:{operation}"))
    if tool in config.rules:
        action = Action(config.rules[tool])
        reason = f"{tool} {_TOOL_VERB[action]} (policy rule {tool} = {action.value})"
        named.append(Decision(action, r, reason, f"tool:{tool}"))
    elif tool in DEFAULT_TOOL_RULES:
        action = DEFAULT_TOOL_RULES[tool]
        reason = f'{tool} {_TOOL_VERB[action]} until the policy names it ([policy.rules] {tool} = "confirm")'
        named.append(Decision(action, r, reason, f"builtin:{tool}"))
    # The generic API is always bound by the rules of the curated tools that drive its operation as well
    # (``api_call = "allow"`` must not undo ``guest_delete = "deny"``): it can send whatever they send. A
    # curated tool is not bound by another curated tool's rule for the same operation: it sends only its own
    # parameters (vm_create cannot restore a backup, so ``backup_restore = "deny"`` must not stop it); an
    # operator who means the operation names the operation, or the risk class.
    if generic:
        named.extend(
            Decision(
                rule,
                r,
                f"{operation} is what {name} does, and {name} {_TOOL_VERB[rule]} "
                + (
                    f"(policy rule {name} = {rule.value})"
                    if name in config.rules
                    else f'until the policy names it ([policy.rules] {name} = "confirm")'
                ),
                f"tool:{name}",
            )
            for name in sorted(set(drivers))
            if name != tool and (rule := _tool_rule(config, name)) is not None
        )
    best = strictest(named)
    if best is not None:
        return best
    action = Action(config.rules.get(r.value, Action.CONFIRM if r is Risk.DESTRUCTIVE else Action.ALLOW))
    return Decision(
        action, r, f"{r.value} calls {_VERB[action]} (policy rule {r.value} = {action.value})", f"risk:{r.value}"
    )


def _tool_rule(config: PolicyConfig, name: str) -> Action | None:
    """The rule that governs tool ``name``: the operator's, else its built-in one, else none."""
    if name in config.rules:
        return Action(config.rules[name])
    return DEFAULT_TOOL_RULES.get(name)


ConfirmVia = Literal["elicit", "token", "deny"]


def confirmation_method(config: PolicyConfig, *, elicitation_supported: bool) -> ConfirmVia:
    """How to confirm a call that needs it, given what the client can do.

    ``elicit`` when the client supports form elicitation; else ``token`` (preview + single-use
    token, :mod:`pvemcp.core.policy.confirm`) when ``confirm_fallback = "token"``; else ``deny``.
    """
    if elicitation_supported:
        return "elicit"
    return "token" if config.confirm_fallback == "token" else "deny"
