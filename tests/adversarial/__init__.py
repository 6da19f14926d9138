"""Adversarial tests: attempts to get past the guardrails (a package, so it can share tests/door's helpers)."""
