"""Limits pvemcp holds itself to, defined once for every test that checks them."""

from __future__ import annotations

# Characters of the model-visible tool list of the default toolsets (the README's "budget 12,000"): every
# character is paid for in each conversation's context, before the model has done anything.
TOOL_LIST_BUDGET = 12_000

# Tools a client lists at most: Cursor shows only the first 40, so the defaults plus any one opt-in
# toolset must fit.
CLIENT_TOOL_CAP = 40
