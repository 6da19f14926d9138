"""Policy: risk classes, read-only, scope, confirmation tokens, audit ledger.

Independent of MCP: doors (the MCP server, the CLI) translate to and from these types.

- :mod:`.risk` — ``Risk`` and the classification of any Proxmox VE operation / call.
- :mod:`.config` — ``PolicyConfig`` from the ``[policy]`` table and ``PVEMCP_*`` env.
- :mod:`.decision` — ``decide`` (allow / confirm / deny), listing and confirmation method.
- :mod:`.scope` — ``Scope`` and the per-target checks (on ``GuestRef``, the one guest record).
- :mod:`.targets` — every guest/node a call touches, and the scope check of a whole call.
- :mod:`.confirm` — single-use confirmation tokens (fallback without elicitation).
- :mod:`.redact` — secrets out of arguments and texts.
- :mod:`.ledger` — the HMAC-chained audit ledger, its verifier and ``pvemcp audit verify``.
"""

from pvemcp.core.policy.config import Action, PolicyConfig, PolicyConfigError, load_policy
from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationFailure, ConfirmationStore
from pvemcp.core.policy.decision import Decision, confirmation_method, decide
from pvemcp.core.policy.ledger import AuditLedger, LedgerError, Outcome, VerifyReport, verify
from pvemcp.core.policy.redact import redact
from pvemcp.core.policy.risk import (
    Classification,
    Risk,
    classify_call,
    classify_operation,
    explain_call,
    explain_operation,
    max_risk,
    parse_risk,
)
from pvemcp.core.policy.scope import (
    Scope,
    ScopeViolation,
    check_new_guest,
    check_new_vmid,
    check_node,
    check_target,
)
from pvemcp.core.policy.targets import CallTargets, check_call, extract_targets

__all__ = [
    "Action",
    "AuditLedger",
    "CallTargets",
    "Classification",
    "ConfirmationError",
    "ConfirmationFailure",
    "ConfirmationStore",
    "Decision",
    "LedgerError",
    "Outcome",
    "PolicyConfig",
    "PolicyConfigError",
    "Risk",
    "Scope",
    "ScopeViolation",
    "VerifyReport",
    "check_call",
    "check_new_guest",
    "check_new_vmid",
    "check_node",
    "check_target",
    "classify_call",
    "classify_operation",
    "confirmation_method",
    "decide",
    "explain_call",
    "explain_operation",
    "extract_targets",
    "load_policy",
    "max_risk",
    "parse_risk",
    "redact",
    "verify",
]
