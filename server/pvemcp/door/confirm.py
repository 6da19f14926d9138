"""Asking the human: MCP form elicitation on both protocol eras, fail-closed.

The core decides *whether* a call needs confirmation (``ConfirmationNeeded``); this module only
carries the question to the user and the answer back, which is transport work:

* **≤ 2025-11-25** — the server sends ``elicitation/create`` over the request's back-channel and
  waits for the answer inside the same ``tools/call``.
* **2026-07-28** — there are no server→client requests; the call returns an ``InputRequiredResult``
  and the client retries with ``input_responses`` and the echoed ``request_state``.

The second shape is dangerous: a client could send an "accept" on the *first* call. We therefore
trust ``input_responses`` only next to a ``request_state`` that we minted. The state is sealed by the
SDK's ``RequestStateBoundary`` (AES-GCM, bound to tool name, argument digest, principal, TTL) and, on
top of that, names a single-use nonce held here — so an answer cannot be replayed either, not even
with identical arguments.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from pvemcp.door._core import canonical_bytes

logger = logging.getLogger(__name__)

Answer = Literal["accept", "decline", "cancel"]

CONFIRM_KEY = "confirm"
STATE_PREFIX = "confirm-v1."
STATE_TTL_S = 600.0  # the boundary's default seal TTL; a pending question never outlives its seal
MAX_PENDING = 1024  # bounded so that a client minting questions in a loop cannot grow memory

CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [CONFIRM_KEY],
    "properties": {
        CONFIRM_KEY: {
            "type": "boolean",
            "title": "Proceed?",
            "description": "Tick to run the action; leave unticked or decline to cancel it.",
            "default": False,
        }
    },
}


def is_modern(ctx: ServerRequestContext[Any, Any]) -> bool:
    """True on the stateless 2026-07-28 era (answers travel in ``input_responses``)."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def client_can_elicit(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client can answer a form elicitation right now.

    A bare ``elicitation: {}`` capability means form support. On the handshake era the question
    rides the request's back-channel, which stateless HTTP or JSON-response mode lack — then we
    must not claim we can ask (the core falls back to its confirmation token instead).
    """
    caps = ctx.session.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None:
        return False
    if elicitation.form is None and elicitation.url is not None:
        return False
    if is_modern(ctx):
        return True
    return ctx.session.can_send_request


def answer_of(response: object) -> Answer:
    """Reduce an elicitation response to accept/decline/cancel; only an explicit ``confirm: true`` accepts."""
    if not isinstance(response, types.ElicitResult):
        return "cancel"
    if response.action == "accept":
        return "accept" if (response.content or {}).get(CONFIRM_KEY) is True else "decline"
    return response.action


def question_request(question: str) -> types.ElicitRequest:
    """The embedded ``elicitation/create`` of a 2026-era ``InputRequiredResult``."""
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=question, requested_schema=CONFIRM_SCHEMA))


async def ask_back_channel(ctx: ServerRequestContext[Any, Any], question: str) -> Answer:
    """Handshake era: ask over the back-channel. Any failure to get an answer counts as cancel."""
    try:
        result = await ctx.session.elicit_form(question, CONFIRM_SCHEMA, related_request_id=ctx.request_id)
    except MCPError as exc:  # includes NoBackChannelError; cancellation (BaseException) propagates
        logger.warning("elicitation failed (%s); treating as cancelled", exc.message)
        return "cancel"
    return answer_of(result)


def arguments_digest(arguments: dict[str, Any]) -> str:
    """A digest of the wire arguments in the core's canonical JSON, to bind a pending question to them.

    Non-finite numbers are allowed: the arguments are the client's, checked by the core only after
    this digest, and ``NaN`` must bind like any other value rather than fail the call here.
    """
    return hashlib.sha256(canonical_bytes(arguments, allow_nan=True)).hexdigest()


@dataclass(frozen=True)
class Pending:
    """One question we asked and have not seen answered yet."""

    tool: str  # the tool name on the wire
    wire_digest: str  # digest of the wire arguments the question was asked for
    caller: str
    question: str
    confirm_tool: str  # what ConfirmationNeeded asked us to re-run on accept
    confirm_arguments: dict[str, Any]
    expires: float
    plan_digest: str = ""  # the plan the question is about: the only one an accept may run
    call_id: str | None = None


class QuestionExpired(Exception):
    """The answer came after the question's deadline; ``pending`` is the question, now consumed.
    ``recorded``: :meth:`PendingQuestions.overdue` already reported it (do not audit it twice)."""

    def __init__(self, pending: Pending, *, recorded: bool = False) -> None:
        super().__init__("the confirmation question expired")
        self.pending = pending
        self.recorded = recorded


class PendingQuestions:
    """Single-use nonces for 2026-era questions, with expiry and a size bound."""

    def __init__(self, ttl_s: float = STATE_TTL_S, max_pending: int = MAX_PENDING) -> None:
        """``ttl_s`` is the question's deadline (policy ``elicitation_timeout_s``), at most the seal's
        ``STATE_TTL_S`` (past that the SDK refuses the echoed state before we see it). An expired
        question is kept until its seal expires too (bounded by ``max_pending``), so that a late
        answer is told *expired* rather than *invalid*."""
        self._ttl = min(ttl_s, STATE_TTL_S)
        self._max = max_pending
        self._items: OrderedDict[str, Pending] = OrderedDict()
        self._reported: set[str] = set()

    def mint(
        self,
        *,
        tool: str,
        wire_arguments: dict[str, Any],
        caller: str,
        question: str,
        confirm_tool: str,
        confirm_arguments: dict[str, Any],
        plan_digest: str = "",
        call_id: str | None = None,
    ) -> str:
        """Register a question and return the plaintext ``request_state`` naming it."""
        now = time.monotonic()
        self._expire(now)
        while len(self._items) >= self._max:
            evicted, _ = self._items.popitem(last=False)
            self._reported.discard(evicted)
        nonce = secrets.token_urlsafe(18)
        self._items[nonce] = Pending(
            tool=tool,
            wire_digest=arguments_digest(wire_arguments),
            caller=caller,
            question=question,
            confirm_tool=confirm_tool,
            confirm_arguments=confirm_arguments,
            expires=now + self._ttl,
            plan_digest=plan_digest,
            call_id=call_id,
        )
        return STATE_PREFIX + nonce

    def take(self, state: str, *, tool: str, wire_arguments: dict[str, Any], caller: str) -> Pending:
        """Consume the question a retry answers; raise the SDK's invalid-state error if it does not match.

        The nonce is removed even when the other checks fail, so a probe burns the question.
        """
        now = time.monotonic()
        self._expire(now)
        nonce = state[len(STATE_PREFIX) :] if state.startswith(STATE_PREFIX) else None
        pending = self._items.pop(nonce, None) if nonce else None
        if pending is None:
            _invalid("unknown, reused or expired confirmation nonce")
        if pending.tool != tool or pending.caller != caller:
            _invalid("confirmation bound to another tool or caller")
        if pending.wire_digest != arguments_digest(wire_arguments):
            _invalid("confirmation bound to other arguments")
        if pending.expires <= now:
            recorded = nonce in self._reported
            self._reported.discard(nonce)
            raise QuestionExpired(pending, recorded=recorded)
        return pending

    def overdue(self) -> list[Pending]:
        """Questions past their deadline that nobody answered, each returned once (to be audited as
        *expired*: in the 2026 era a client that never retries leaves no other trace)."""
        now = time.monotonic()
        due = [(n, p) for n, p in self._items.items() if p.expires <= now and n not in self._reported]
        self._reported.update(n for n, _ in due)
        return [p for _, p in due]

    def _expire(self, now: float) -> None:
        """Forget questions whose seal has expired too (until then a late answer reads *expired*)."""
        for nonce in [n for n, p in self._items.items() if p.expires + STATE_TTL_S <= now]:
            del self._items[nonce]
            self._reported.discard(nonce)

    def __len__(self) -> int:
        return len(self._items)


def _invalid(reason: str) -> NoReturn:
    """Refuse like ``RequestStateBoundary`` does: same code and message, reason to the log only."""
    logger.warning("request_state refused: %s", reason)
    raise MCPError(code=types.INVALID_PARAMS, message="Invalid or expired requestState")
