"""Canonical JSON: the one byte form that digests, tokens and ledger MACs are computed over.

The confirmation tokens (bound to "the exact arguments"), the plan digest a confirmation binds, the
door's digest of a question's wire arguments and the audit ledger (a MAC over "the record") all need a
serialization in which equal values always give equal bytes, whatever the key order a client or a dict
happened to use. Keeping it in one place means they can never drift apart, and a change to it is
visibly a change to all of them.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any, *, allow_nan: bool = False) -> str:
    """Serialize ``value`` with sorted keys, no whitespace, UTF-8 text and, by default, no NaN/Infinity.

    ``allow_nan=False`` because ``NaN`` is not JSON and a record or token binding holding one could not
    be read back as the same value (``NaN != NaN``). ``allow_nan=True`` is for a digest of input that
    is only ever re-serialized, never parsed: arguments as a client sent them (its JSON parser may
    accept ``NaN``), where the tokens ``NaN``/``Infinity``/``-Infinity`` are as unambiguous as any
    other (a string ``"NaN"`` is quoted) and refusing them would turn a client's odd input into a crash.
    Non-JSON types raise ``TypeError`` rather than being stringified, so a caller cannot accidentally
    bind two different objects to the same text.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)


def canonical_bytes(value: Any, *, allow_nan: bool = False) -> bytes:
    """:func:`canonical_json` encoded as UTF-8, the input of every digest and HMAC over a value."""
    return canonical_json(value, allow_nan=allow_nan).encode("utf-8")
