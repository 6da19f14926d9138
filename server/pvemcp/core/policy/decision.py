"""The policy decision for one call: allow, confirm or deny, and why.

Order of precedence, strongest first:

1. ``read_only``: anything that is not ``read`` is denied, whatever the rules say (an operator who
   turned read-only on must not be overridden by a forgotten ``tool = "allow"``).
2. A rule for the tool's name (some tools have a built-in one, ``DEFAULT_TOOL_RULES``: guest_exec is off
   until the operator names it).
3. The rule for the risk class (defaults: read=allow, write=allow, destructive=confirm).

Risks that are not one of the three classes count as ``destructive`` (fail closed).

Scope is not decided here: a call with any target out of scope is refused before this point (see
:mod:`pvemcp.core.policy.scope`). Confirmation itself is the door's (elicitation) or
:mod:`pvemcp.core.policy.confirm`'s (token); :func:`confirmation_method` says which to use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pvemcp.core.policy.config import DEFAULT_TOOL_RULES, Action, PolicyConfig
from pvemcp.core.policy.risk import Risk, parse_risk

__all__ = ["ConfirmVia", "Decision", "confirmation_method", "decide", "is_listed"]


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


_VERB = {Action.ALLOW: "allowed", Action.CONFIRM: "need confirmation", Action.DENY: "denied"}
_TOOL_VERB = {Action.ALLOW: "is allowed", Action.CONFIRM: "needs confirmation", Action.DENY: "is denied"}


def decide(config: PolicyConfig, tool: str, risk: Risk | str) -> Decision:
    """Decide what to do with a call of ``tool`` whose (effective) risk is ``risk``.

    For the generic API tool, pass the risk of the concrete call
    (:func:`~pvemcp.core.policy.risk.classify_call`); for a curated tool, the higher of its declared
    risk and its calls' risks (:func:`~pvemcp.core.policy.risk.max_risk`).
    """
    r = parse_risk(risk)
    if config.read_only and r is not Risk.READ:
        return Decision(
            Action.DENY, r, f"the server is read-only: {r.value} calls are refused (read_only)", "read_only"
        )
    if tool in config.rules:
        action = Action(config.rules[tool])
        reason = f"{tool} {_TOOL_VERB[action]} (policy rule {tool} = {action.value})"
        return Decision(action, r, reason, f"tool:{tool}")
    if tool in DEFAULT_TOOL_RULES:
        action = DEFAULT_TOOL_RULES[tool]
        reason = f'{tool} {_TOOL_VERB[action]} until the policy names it ([policy.rules] {tool} = "confirm")'
        return Decision(action, r, reason, f"builtin:{tool}")
    action = Action(config.rules.get(r.value, Action.CONFIRM if r is Risk.DESTRUCTIVE else Action.ALLOW))
    return Decision(
        action, r, f"{r.value} calls are {_VERB[action]} (policy rule {r.value} = {action.value})", f"risk:{r.value}"
    )


ConfirmVia = Literal["elicit", "token", "deny"]


def confirmation_method(config: PolicyConfig, *, elicitation_supported: bool) -> ConfirmVia:
    """How to confirm a call that needs it, given what the client can do.

    ``elicit`` when the client supports form elicitation; else ``token`` (preview + single-use
    token, :mod:`pvemcp.core.policy.confirm`) when ``confirm_fallback = "token"``; else ``deny``.
    """
    if elicitation_supported:
        return "elicit"
    return "token" if config.confirm_fallback == "token" else "deny"


def is_listed(config: PolicyConfig, tool: str, risk: Risk | str, toolsets: Iterable[str]) -> bool:
    """Whether ``tools/list`` should show ``tool`` (in ``toolsets``, declared ``risk``).

    Hidden: mutating tools in read-only mode, tools outside the configured toolsets, and tools
    the policy always denies (listing them would only cost context and invite refused calls).
    A hidden tool must also be refused when called; the door does that by not finding it.
    """
    if config.toolsets is not None and not set(toolsets) & set(config.toolsets):
        return False
    return not decide(config, tool, risk).denied
