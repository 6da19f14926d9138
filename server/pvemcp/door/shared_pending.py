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
import json
import secrets
import time
from typing import Any

from pvemcp.core.state.store import TokenSpender
from pvemcp.door.confirm import STATE_TTL_S, Pending, _invalid, arguments_digest

__all__ = ["SHARED_PREFIX", "SharedPendingQuestions"]

SHARED_PREFIX = "confirm-v1s."


class SharedPendingQuestions:
    """Same ``mint``/``take`` contract as ``PendingQuestions``; ``take_once`` spends the nonce in the store."""

    def __init__(self, spender: TokenSpender, ttl_s: float = STATE_TTL_S) -> None:
        self._spender = spender
        self._ttl = ttl_s

    def mint(
        self,
        *,
        tool: str,
        wire_arguments: dict[str, Any],
        caller: str,
        question: str,
        confirm_tool: str,
        confirm_arguments: dict[str, Any],
    ) -> str:
        """The plaintext ``request_state`` carrying the whole question (the boundary seals it)."""
        body = {
            "n": secrets.token_urlsafe(18),
            "t": tool,
            "d": arguments_digest(wire_arguments),
            "c": caller,
            "q": question,
            "ct": confirm_tool,
            "ca": confirm_arguments,
            "e": time.time() + self._ttl,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return SHARED_PREFIX + base64.urlsafe_b64encode(text).decode("ascii")

    async def take_once(self, state: str, *, tool: str, wire_arguments: dict[str, Any], caller: str) -> Pending:
        """The question a retry answers, spent once across replicas; the SDK's invalid-state error otherwise."""
        body = _decode(state)
        if body is None or body["e"] <= time.time():
            _invalid("unknown or expired shared confirmation state")
        if body["t"] != tool or body["c"] != caller:
            _invalid("confirmation bound to another tool or caller")
        if body["d"] != arguments_digest(wire_arguments):
            _invalid("confirmation bound to other arguments")
        if not await self._spender.spend(b"q:" + body["n"].encode("ascii"), float(body["e"])):
            _invalid("confirmation state already answered (on this or another replica)")
        return Pending(
            tool=body["t"],
            wire_digest=body["d"],
            caller=body["c"],
            question=body["q"],
            confirm_tool=body["ct"],
            confirm_arguments=body["ca"],
            expires=float(body["e"]),
        )


def _decode(state: str) -> dict[str, Any] | None:
    if not state.startswith(SHARED_PREFIX):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(state[len(SHARED_PREFIX) :].encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    keys: dict[str, type | tuple[type, ...]] = {
        **dict.fromkeys(("n", "t", "d", "c", "q", "ct"), str),
        "ca": dict,
        "e": (int, float),
    }
    if not isinstance(body, dict) or any(not isinstance(body.get(k), kind) for k, kind in keys.items()):
        return None
    return body
