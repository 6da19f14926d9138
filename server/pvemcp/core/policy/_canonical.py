"""Canonical JSON: the one byte form that tokens and ledger MACs are computed over.

Both the confirmation tokens (bound to "the exact arguments") and the audit ledger (a MAC over
"the record") need a serialization in which equal values always give equal bytes, whatever the
key order a client or a dict happened to use. Keeping it in one place means the two can never
drift apart, and a change to it is visibly a change to both formats.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Serialize ``value`` with sorted keys, no whitespace, UTF-8 text and no NaN/Infinity.

    ``allow_nan=False`` because ``NaN`` is not JSON and ``NaN != NaN`` would make a binding that
    can never be redeemed; non-JSON types raise ``TypeError`` rather than being stringified, so a
    caller cannot accidentally bind two different objects to the same text.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    """:func:`canonical_json` encoded as UTF-8, the input of every HMAC in this package."""
    return canonical_json(value).encode("utf-8")
