"""Policy: risk classes, read-only, scope, confirmation tokens, audit ledger."""
