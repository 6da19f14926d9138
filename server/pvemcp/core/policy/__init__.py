"""Policy: risk classes, read-only, scope, confirmation tokens, audit ledger.

Independent of MCP: doors (the MCP server, the CLI) translate to and from these types.

- :mod:`.risk_class` — ``Risk``, the one type of a risk (light: the catalog imports it at start).
- :mod:`.risk` — the classification of any Proxmox VE operation / call (re-exports ``Risk``).
- :mod:`.config` — ``PolicyConfig`` from the ``[policy]`` table and ``PVEMCP_*`` env.
- :mod:`.decision` — ``decide`` (allow / confirm / deny), listing and confirmation method.
- :mod:`.scope` — ``Scope`` and the per-target checks (on ``GuestRef``, the one guest record).
- :mod:`.targets` — every guest/node a call touches, and the scope check of a whole call.
- :mod:`.confirm` — single-use confirmation tokens (fallback without elicitation).
- :mod:`.redact` — secrets out of arguments and texts.
- :mod:`.ledger` — the HMAC-chained audit ledger, its verifier and ``pvemcp audit verify``.
"""
