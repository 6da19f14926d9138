"""2026-era confirmation questions that any replica can take, each once.

The single-process :class:`~pvemcp.door.confirm.PendingQuestions` keeps each question in memory under
a nonce, so the client's answer must come back to the same process. With replicas behind a load
balancer it may not: here the question travels *inside* the ``request_state`` itself — which the
SDK's ``RequestStateBoundary`` seals with AES-GCM under the replicas' shared key (confidential,
unforgeable, bound to tool, arguments, principal and a TTL) — and its nonce is spent in the shared
store, so an answer is accepted once across all replicas, never replayed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import secrets
import time
from typing import Any

from pvemcp.door._core import TokenSpender
from pvemcp.door.confirm import STATE_TTL_S, Pending, _invalid, arguments_digest

__all__ = ["SHARED_PREFIX", "SharedPendingQuestions"]

SHARED_PREFIX = "confirm-v1s."


class SharedPendingQuestions:
    """Same ``mint``/``take`` contract as ``PendingQuestions``; ``take_once`` spends the nonce in the store."""

    def __init__(self, spender: TokenSpender, ttl_s: float = STATE_TTL_S) -> None:
        self._spender = spender
        self._ttl = ttl_s

    def mint(self, *, wire_arguments: dict[str, Any], **fields: Any) -> str:
        """The plaintext ``request_state`` carrying the whole question (the boundary seals it).

        ``fields`` are those of :class:`~pvemcp.door.confirm.Pending` (tool, caller, question,
        confirm_tool, confirm_arguments, ...): whatever the question holds travels with it.
        """
        body = {
            "n": secrets.token_urlsafe(18),
            "d": arguments_digest(wire_arguments),
            "e": time.time() + self._ttl,
            "f": fields,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return SHARED_PREFIX + base64.urlsafe_b64encode(text).decode("ascii")

    async def take_once(self, state: str, *, tool: str, wire_arguments: dict[str, Any], caller: str) -> Pending:
        """The question a retry answers, spent once across replicas; the SDK's invalid-state error otherwise."""
        body = _decode(state)
        if body is None or body["e"] <= time.time():
            _invalid("unknown or expired shared confirmation state")
        fields = body["f"]
        if fields.get("tool") != tool or fields.get("caller") != caller:
            _invalid("confirmation bound to another tool or caller")
        if body["d"] != arguments_digest(wire_arguments):
            _invalid("confirmation bound to other arguments")
        if not await self._spender.spend(b"q:" + body["n"].encode("ascii"), float(body["e"])):
            _invalid("confirmation state already answered (on this or another replica)")
        known = {f.name for f in dataclasses.fields(Pending)}
        kept = {k: v for k, v in fields.items() if k in known and k not in ("wire_digest", "expires")}
        try:
            return Pending(**kept, wire_digest=body["d"], expires=float(body["e"]))
        except TypeError:  # sealed by a pvemcp whose questions had other fields
            _invalid("confirmation state of another pvemcp version")


def _decode(state: str) -> dict[str, Any] | None:
    if not state.startswith(SHARED_PREFIX):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(state[len(SHARED_PREFIX) :].encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    keys: dict[str, type | tuple[type, ...]] = {"n": str, "d": str, "e": (int, float), "f": dict}
    if not isinstance(body, dict) or any(not isinstance(body.get(k), kind) for k, kind in keys.items()):
        return None
    return body
