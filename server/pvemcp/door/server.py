"""The MCP door: a low-level ``mcp.server.Server`` translating MCP onto ``pvemcp.core.app.App``.

The door holds no business logic. It lists what the App lists, hands every call to ``App.call`` and
translates the outcome: a ``ToolResult`` becomes a ``CallToolResult``; ``ConfirmationNeeded`` becomes
an elicitation (``confirm.py``); ``UnknownTool`` becomes the protocol error the spec requires.
Validation, policy, scope, audit and the token fallback all happen in the core, identically for every
door. The low-level Server is used because our input schemas are generated and must reach the wire
byte for byte (``MCPServer`` would rebuild them from Python signatures).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError

from pvemcp import __version__
from pvemcp.door import confirm
from pvemcp.door._core import INSTRUCTIONS as CORE_INSTRUCTIONS
from pvemcp.door._core import (
    App,
    CallContext,
    ConfirmationNeeded,
    ToolDef,
    ToolResult,
    UnknownTool,
    face,
    request_state_key,
)
from pvemcp.door.shared_pending import SharedPendingQuestions
from pvemcp.door.startup import pause_collector, resume_collector
from pvemcp.door.warmup import Warmup

if TYPE_CHECKING:
    from pvemcp.door.prompts import PromptDoor
    from pvemcp.door.resources import ResourceDoor

logger = logging.getLogger(__name__)

SERVER_NAME = "pvemcp"
_DOOR_INSTRUCTIONS = (
    "pvemcp operates Proxmox VE clusters. Start with the list tools (compact rows, filters, paging); "
    "read tools are safe. Actions on guests may ask the user to confirm: the question states exactly "
    "what will happen. Long actions return a task UPID or wait for it and report progress. Use dry_run "
    "to preview the exact Proxmox request. The api_* tools reach any Proxmox API operation."
)
# The core words the control parameters (wait, dry_run, confirm_token, paging) once for every door.
INSTRUCTIONS: str = CORE_INSTRUCTIONS or _DOOR_INSTRUCTIONS

CallOutcome = types.CallToolResult | types.InputRequiredResult
REHEARSAL_TOOL = "guest_list"  # the warm-up's one rehearsal call: a read every toolset lists


def tool_to_wire(tool: ToolDef) -> types.Tool:
    """One ``ToolDef`` as the MCP ``Tool`` it is listed as (schemas passed through untouched)."""
    hints = tool.annotations
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        output_schema=dict(tool.output_schema),
        annotations=types.ToolAnnotations(
            read_only_hint=bool(hints["readOnlyHint"]),
            destructive_hint=bool(hints["destructiveHint"]),
            idempotent_hint=bool(hints["idempotentHint"]),
            open_world_hint=bool(hints["openWorldHint"]),
        ),
    )


def result_to_wire(result: ToolResult, output_validator: Any = None) -> types.CallToolResult:
    """A core ``ToolResult`` as a ``CallToolResult``: structured content and a text face with the same facts.

    Text-only hosts (Claude Desktop, claude.ai) show the model only the text, structured hosts only the
    structured content: the text face renders every value of the structured result (``core.render``).

    An error result keeps its structured content only if it conforms to the tool's outputSchema:
    the SDK client skips validation for errors, but stricter clients (the Inspector) do not, and
    an error's meaning is in its text anyway.
    """
    structured: dict[str, Any] | None = result.structured
    if result.is_error and output_validator is not None and not output_validator.is_valid(structured):
        structured = None
    return types.CallToolResult(
        content=[types.TextContent(text=face(result.text, result.structured))],
        structured_content=structured,
        is_error=result.is_error,
    )


def error_result(text: str) -> types.CallToolResult:
    """An ``isError`` result the model can read (not a protocol error)."""
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


class ProgressRelay:
    """The core's ``ProgressFn`` for one request, forwarding to the client as MCP progress.

    Safe whatever the client did: ``report_progress`` is a no-op without a progress token, values
    that do not increase are dropped (the spec wants strictly increasing progress), and a failing
    notification is logged, never allowed to fail the tool call. Cancellation is not caught.
    """

    def __init__(self, ctx: ServerRequestContext[Any, Any]) -> None:
        self._ctx = ctx
        self._last = -math.inf

    async def __call__(self, progress: float, total: float | None, message: str) -> None:
        if not progress > self._last:
            return
        self._last = progress
        try:
            await self._ctx.session.report_progress(progress, total, message or None)
        except Exception as exc:  # a closed stream must not abort the Proxmox action
            logger.debug("progress notification dropped: %s", exc)


class Door:
    """The request handlers of one ``Server``, bound to one ``App``."""

    def __init__(self, app: App, *, caller: str) -> None:
        self.app = app
        self.default_caller = caller
        self.timeout_s = float(app.config.policy.elicitation_timeout_s)
        self.pending = confirm.PendingQuestions(ttl_s=self.timeout_s)
        self._shared_pending: SharedPendingQuestions | None = None
        self._tools: list[types.Tool] | None = None
        self._schemas: dict[str, dict[str, Any]] = {}
        self._output_validators: dict[str, Any] = {}
        self._schemas_out: dict[str, Any] = {}

    @functools.cached_property
    def resources(self) -> ResourceDoor:
        """The resources' handlers, built when a client first asks (a start that only lists tools skips them)."""
        from pvemcp.door.resources import ResourceDoor

        return ResourceDoor(self.app)

    @functools.cached_property
    def prompts(self) -> PromptDoor:
        """The prompts' handlers, built when a client first asks for them."""
        from pvemcp.door.prompts import PromptDoor

        return PromptDoor(self.app)

    def questions(self) -> confirm.PendingQuestions | SharedPendingQuestions:
        """Where 2026-era questions wait: this process, or (replicas) the sealed state plus the shared store."""
        spender = self.app.state.spender if self.app.state is not None else None
        if spender is None:
            return self.pending
        if self._shared_pending is None:
            self._shared_pending = SharedPendingQuestions(spender, ttl_s=self.timeout_s)
        return self._shared_pending

    # -- identity -------------------------------------------------------------------------------

    def caller(self) -> str:
        """The authenticated HTTP principal if any, else the transport's name ("stdio", "local")."""
        token = get_access_token()
        if token is None:
            return self.default_caller
        return token.subject or token.client_id

    # -- tools ----------------------------------------------------------------------------------

    def tools(self) -> list[types.Tool]:
        """The wire tool list, built once (the catalog is static for the life of the process)."""
        if self._tools is None:
            defs = self.app.tools()
            self._tools = [tool_to_wire(t) for t in defs]
            self._schemas = {t.name: t.input_schema for t in self._tools}
            self._schemas_out = {t.name: t.output_schema for t in self._tools if t.output_schema}
        return self._tools

    def input_schema(self, name: str) -> Mapping[str, Any] | None:
        """Feeds the SDK's 2026-07-28 ``Mcp-Param-*`` header validation."""
        self.tools()
        return self._schemas.get(name)

    def wire(self, tool: str, result: ToolResult) -> types.CallToolResult:
        self.tools()
        return result_to_wire(result, self._output_validator(tool))

    def _output_validator(self, tool: str) -> Any:
        """Compiled on the first result of each tool: listing tools at start-up needs no validator."""
        if tool not in self._output_validators:
            import jsonschema

            schema = self._schemas_out.get(tool)
            self._output_validators[tool] = jsonschema.Draft202012Validator(schema) if schema else None
        return self._output_validators[tool]

    async def warm_up(self) -> None:
        """What the first call needs, loaded ahead (``warmup.Warmup`` runs this in the background)."""
        tools = self.tools()
        pause_collector()  # CPU work that builds long-lived objects, as at start-up (door/startup.py)
        try:
            await self.app.warm_code()
            for tool in tools:
                self._output_validator(tool.name)
        finally:
            resume_collector()
        await self.app.warm_cluster()
        await self.rehearse()

    async def rehearse(self) -> types.CallToolResult | None:
        """One read through the whole call path, its reply built and serialised as the SDK would, then dropped.

        Loading modules and data is not all a first call pays: the first run of the pipeline's code and
        of the SDK's result serialisers costs about as much again as a warm call (issue #15). A one-row
        ``guest_list`` changes nothing, writes no ledger record, and is answered from the guest index the
        warm-up has just fetched; it is skipped when the tool is not listed. Returns the reply (or None).
        """
        if self.app.tool(REHEARSAL_TOOL) is None:
            return None
        outcome = await self.app.call(REHEARSAL_TOOL, {"limit": 1}, CallContext(caller="warm-up"))
        if not isinstance(outcome, ToolResult):
            return None
        reply = self.wire(REHEARSAL_TOOL, outcome)
        reply.model_dump_json(by_alias=True, exclude_none=True)
        return reply

    async def on_list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools())

    async def on_call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> CallOutcome:
        name = params.name
        arguments = dict(params.arguments or {})
        caller = self.caller()
        try:
            await self._record_overdue()
            if confirm.is_modern(ctx) and params.request_state is not None:
                return await self._resume(ctx, params, arguments, caller)
            if params.input_responses:
                # Answers with no question we asked: ignored, so a pre-filled "accept" confirms nothing.
                logger.warning("ignoring input_responses sent without a request_state (tool %s)", name)
            call_ctx = CallContext(
                caller=caller, can_elicit=confirm.client_can_elicit(ctx), progress=ProgressRelay(ctx)
            )
            outcome = await self.app.call(name, arguments, call_ctx)
            return await self._translate(ctx, name, arguments, outcome, call_ctx)
        except MCPError:
            raise
        except Exception:  # a bug must not surface as an opaque -32603; the model gets a readable error
            logger.exception("tool %s failed inside pvemcp", name)
            return error_result(
                f"{name}: internal error in pvemcp (see the server log); check the target's state before retrying"
            )

    async def _translate(
        self,
        ctx: ServerRequestContext[Any, Any],
        name: str,
        arguments: dict[str, Any],
        outcome: object,
        call_ctx: CallContext,
    ) -> CallOutcome:
        if isinstance(outcome, ToolResult):
            return self.wire(name, outcome)
        if isinstance(outcome, UnknownTool):
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
        if isinstance(outcome, ConfirmationNeeded):
            if not call_ctx.can_elicit or call_ctx.confirmed:
                logger.error("core asked for confirmation it should not need (tool %s)", name)
                return error_result(f"{name}: confirmation required but this client cannot be asked; nothing was sent")
            if confirm.is_modern(ctx):
                state = self.questions().mint(
                    tool=name,
                    wire_arguments=arguments,
                    caller=call_ctx.caller,
                    question=outcome.question,
                    confirm_tool=outcome.tool,
                    confirm_arguments=dict(outcome.arguments),
                    plan_digest=outcome.plan_digest,
                    call_id=outcome.call_id,
                )
                return types.InputRequiredResult(
                    input_requests={confirm.CONFIRM_KEY: confirm.question_request(outcome.question)},
                    request_state=state,
                )
            bound = replace(call_ctx, confirmed_plan=outcome.plan_digest, call_id=outcome.call_id)
            with anyio.move_on_after(self.timeout_s) as deadline:
                answer = await confirm.ask_back_channel(ctx, outcome.question)
            if deadline.cancelled_caught:
                expired = await self.app.record_expired(
                    outcome.tool, outcome.arguments, bound, plan_digest=outcome.plan_digest
                )
                return self.wire(outcome.tool, expired)
            return await self._decide(outcome.tool, dict(outcome.arguments), answer, bound)
        raise TypeError(f"App.call returned {type(outcome).__name__}")

    async def _record_overdue(self) -> None:
        """Audit the 2026-era questions whose deadline passed unanswered (checked on every call)."""
        for late in self.pending.overdue():
            late_ctx = CallContext(caller=late.caller, call_id=late.call_id)
            await self.app.record_expired(
                late.confirm_tool, late.confirm_arguments, late_ctx, plan_digest=late.plan_digest
            )

    async def _resume(
        self,
        ctx: ServerRequestContext[Any, Any],
        params: types.CallToolRequestParams,
        arguments: dict[str, Any],
        caller: str,
    ) -> CallOutcome:
        """The 2026-era retry: the state was unsealed by the boundary; now check and burn our nonce."""
        assert params.request_state is not None
        try:
            questions = self.questions()
            if isinstance(questions, SharedPendingQuestions):  # replicas: the answer may reach another one
                pending = await questions.take_once(
                    params.request_state, tool=params.name, wire_arguments=arguments, caller=caller
                )
            else:
                pending = questions.take(
                    params.request_state, tool=params.name, wire_arguments=arguments, caller=caller
                )
        except confirm.QuestionExpired as exc:
            late = exc.pending
            late_ctx = CallContext(caller=caller, call_id=late.call_id)
            if exc.recorded:
                expired = self.app.expired_result(late.confirm_tool)
            else:
                expired = await self.app.record_expired(
                    late.confirm_tool, late.confirm_arguments, late_ctx, plan_digest=late.plan_digest
                )
            return self.wire(late.confirm_tool, expired)
        responses = params.input_responses or {}
        if confirm.CONFIRM_KEY not in responses:
            # Retried without answering: ask again rather than guess.
            state = questions.mint(
                tool=pending.tool,
                wire_arguments=arguments,
                caller=caller,
                question=pending.question,
                confirm_tool=pending.confirm_tool,
                confirm_arguments=pending.confirm_arguments,
                plan_digest=pending.plan_digest,
                call_id=pending.call_id,
            )
            return types.InputRequiredResult(
                input_requests={confirm.CONFIRM_KEY: confirm.question_request(pending.question)},
                request_state=state,
            )
        answer = confirm.answer_of(responses[confirm.CONFIRM_KEY])
        call_ctx = CallContext(
            caller=caller,
            can_elicit=True,
            progress=ProgressRelay(ctx),
            confirmed_plan=pending.plan_digest,
            call_id=pending.call_id,
        )
        return await self._decide(pending.confirm_tool, pending.confirm_arguments, answer, call_ctx)

    async def _decide(
        self, tool: str, arguments: dict[str, Any], answer: confirm.Answer, call_ctx: CallContext
    ) -> types.CallToolResult:
        """Run the confirmed plan (``call_ctx.confirmed_plan``: the core plans again and sends nothing
        if it differs), or record the refusal (nothing reaches Proxmox)."""
        if answer == "accept":
            outcome = await self.app.call(tool, arguments, replace(call_ctx, confirmed=True))
            if isinstance(outcome, ToolResult):
                return self.wire(tool, outcome)
            logger.error("core returned %s for a confirmed call of %s", type(outcome).__name__, tool)
            return error_result(f"{tool}: the confirmed call could not run; nothing was sent")
        result = await self.app.record_declined(tool, arguments, call_ctx, answer, plan_digest=call_ctx.confirmed_plan)
        return self.wire(tool, result)

    # -- resources ------------------------------------------------------------------------------

    async def on_list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=self.resources.static())

    async def on_list_resource_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=self.resources.templates())

    async def on_read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await self.resources.read(params.uri)


async def _on_list_prompts(
    door: Door, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=door.prompts.listing())


async def _on_get_prompt(
    door: Door, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
) -> types.GetPromptResult:
    return door.prompts.get(params.name, params.arguments)


def build_server(app: App, *, caller: str = "local") -> Server[Any]:
    """The configured low-level ``Server`` for ``app``; ``caller`` names unauthenticated callers.

    The ``RequestStateBoundary`` is what makes 2026-era confirmation safe: it seals every
    ``request_state`` we return and rejects any echo it did not seal, for this tool, these
    arguments and this principal. ``MCPServer`` installs it by default; the low-level Server
    does not, so we do.
    """
    door = Door(app, caller=caller)
    warm = Warmup(door.warm_up)
    server: Server[Any] = Server(
        SERVER_NAME,
        lifespan=warm.lifespan,
        version=__version__,
        instructions=INSTRUCTIONS,
        get_tool_input_schema=door.input_schema,
        on_list_tools=door.on_list_tools,
        on_call_tool=door.on_call_tool,
        on_list_resources=door.on_list_resources,
        on_list_resource_templates=door.on_list_resource_templates,
        on_read_resource=door.on_read_resource,
        on_list_prompts=functools.partial(_on_list_prompts, door),
        on_get_prompt=functools.partial(_on_get_prompt, door),
    )
    shared_key = request_state_key(app.config.policy.secret_key_file)  # replicas seal with one key
    security = RequestStateSecurity(keys=[shared_key]) if shared_key else RequestStateSecurity.ephemeral()
    server.middleware.append(RequestStateBoundary(security, default_audience=server.name))
    server.middleware.append(warm.middleware)  # starts the warm-up once the tool listing is answered
    return server


def compact_tool_payload(tools: Sequence[types.Tool]) -> str:
    """The model-visible part of the tool list (name, description, inputSchema) as compact JSON."""
    rows = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in tools]
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
