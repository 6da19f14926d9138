"""The App: the whole tool pipeline, for any door (MCP, CLI).

One pipeline for every tool, the generic ones included:

1. **prepare** — validate the arguments against the tool's schema; plan (resolve guests, build the
   exact requests; only GETs are sent) and collect every object the requests touch, with current
   facts (:mod:`pvemcp.core.tools.objects`).
2. **govern** — one decision per request (read-only; rules by operation, tool, for the generic tools the
   curated tools that drive the operation, risk class; the strictest wins), then scope over every object
   of the plan.
3. **confirm** — if needed, one question rendered from the plan, asked by elicitation (the door) or
   answered by a single-use token; either binds the plan's digest.
4. **execute** — a confirmed call is planned again just before sending; if the digest differs, nothing
   is sent (``plan_changed``). Then exactly that plan runs, with bounded concurrency and task waits.
5. **audit** — every record carries the call id and the plan digest.

Start-up imports only what listing needs (catalog, configuration, the policy's decision); the modules a
call needs are imported inside the methods that use them, on the first call or ahead of it by
:meth:`App.warm_up` (issue #15: ``serve`` answers ``tools/list`` without them).

Reads skip confirmation but honour rules (the generic read tool) and read scope (refused when they
name an out-of-scope guest, volume, task or node; listings filtered). Refusals carry a structured
reason (:func:`pvemcp.core.tools.base.refusal`).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from pvemcp.core import kinds
from pvemcp.core.catalog import CONTROL_HELP, Catalog, ToolDef
from pvemcp.core.catalog_cache import cache_dir, load_catalog
from pvemcp.core.config import AppConfig, load_app_config
from pvemcp.core.kinds import HandlerKind, Mode, ReadScope
from pvemcp.core.policy.config import ALSO_DRIVEN_BY
from pvemcp.core.policy.decision import Decision, confirmation_method, decide, listing_decision, strictest
from pvemcp.core.policy.ledger import AuditLedger, new_call_id
from pvemcp.core.policy.ledger import Outcome as Audit
from pvemcp.core.pve.errors import PveError
from pvemcp.core.state import LedgerWriter, StateStore, open_state
from pvemcp.core.tools.base import (
    CallContext,
    ConfirmationNeeded,
    JsonDict,
    Outcome,
    Plan,
    PlannedCall,
    ProgressFn,
    RunContext,
    ToolError,
    ToolResult,
    UnknownTool,
    refusal,
)
from pvemcp.dialect.model import Spec, load_spec
from pvemcp.dialect.resources import data_file

if TYPE_CHECKING:
    from pvemcp.core.policy.confirm import ConfirmationStore
    from pvemcp.core.policy.risk_class import Risk
    from pvemcp.core.pve.client import PveClient
    from pvemcp.core.pve.resolve import GuestRef
    from pvemcp.core.tools.resources import ResourceView

__all__ = [
    "INSTRUCTIONS",
    "App",
    "AppConfig",
    "CallContext",
    "ConfirmationNeeded",
    "ToolDef",
    "ToolResult",
    "UnknownTool",
    "load_app_config",
]

log = logging.getLogger("pvemcp")


def _warm_imports(spec: bool) -> None:
    """The modules and data the first call imports or parses (run in a worker thread by ``warm_up``);
    ``spec``: parse the bundled API spec too (not when the App was given one)."""
    import jsonschema  # noqa: F401

    from pvemcp.core.policy import confirm, risk  # noqa: F401
    from pvemcp.core.pve import client, resolve  # noqa: F401
    from pvemcp.core.tools import api, args, conclude, objects  # noqa: F401

    kinds.warm()
    if spec:
        load_spec()


_CONTROL_KEYS = ("dry_run", "confirm_token", "wait", "cluster")
BATCH_CONCURRENCY = 8
INSTRUCTIONS = "pvemcp operates Proxmox VE. " + CONTROL_HELP


class App:
    """One per server process: the catalog, one shared client per cluster, and the policy."""

    def __init__(
        self, config: AppConfig, spec: Spec | None = None, confirmations: ConfirmationStore | None = None
    ) -> None:
        self.config = config
        self._spec = spec
        self._catalog: Catalog | None = None
        self._clients: dict[str, PveClient] = {}
        self._stack: AsyncExitStack | None = None
        self._opening = anyio.Lock()
        self._own_confirmations = confirmations is None  # ours to replace by a shared one (state_url)
        self._given_confirmations = confirmations
        self.state: StateStore | None = None
        self._ledger: LedgerWriter | None = None
        self._visible: dict[str, ToolDef] | None = None
        self._validators: dict[str, Any] = {}
        self._imported: anyio.Event | None = None  # set once the warm-up's imports are done
        self._called = False  # a tool call has started (the warm-up then leaves the imports to it)
        self._kinds: dict[str, HandlerKind] = {}
        self.plans_built = 0
        """How many plans this App has built (a confirmed call builds two: before asking, before sending)."""

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> App:
        """Start: open the audit ledger. Clients connect on their first call, so a server that is only
        listed (or misconfigured for one of several clusters) starts fast and reports errors per call."""
        self._stack = AsyncExitStack()
        self.state = await self._stack.enter_async_context(open_state(self.config.policy))
        self._ledger = self.state.ledger
        if self._own_confirmations and self.state.spender is not None:  # replicas: tokens verify on any of them
            from pvemcp.core.policy.confirm import ConfirmationStore

            self._given_confirmations = ConfirmationStore(
                self.state.confirm_secret(), ttl_s=self.config.policy.confirm_ttl_s, spender=self.state.spender
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._clients.clear()

    @functools.cached_property
    def _confirmations(self) -> ConfirmationStore:
        """The token store (fallback confirmations): the one given, the replicas' shared one, or a new one in
        memory, made on first use (a start that only lists tools does not import it)."""
        if self._given_confirmations is not None:  # (a store with no entries is falsy: it has a length)
            return self._given_confirmations
        from pvemcp.core.policy.confirm import ConfirmationStore

        return ConfirmationStore(ttl_s=self.config.policy.confirm_ttl_s)

    @property
    def spec(self) -> Spec:
        if self._spec is None:
            self._spec = load_spec()
        return self._spec

    @property
    def catalog(self) -> Catalog:
        """The derived catalog; from the on-disk cache when tools.yaml and openapi.json are unchanged."""
        if self._catalog is None:
            clusters = self.config.cluster_names
            tools_file = self.config.tools_file or data_file("tools.yaml")
            spec_file = data_file("openapi.json")

            def build() -> Catalog:
                return Catalog.load(self.spec, tools_file, clusters=clusters)

            directory = cache_dir() if self._spec is None else None  # an injected spec is not the file's
            self._catalog = load_catalog(build, [tools_file, spec_file], clusters, directory)
        return self._catalog

    async def client(self, cluster: str | None = None) -> PveClient:
        """The shared client of a cluster, opened on first use (one per cluster, whatever the concurrency)."""
        name = cluster or next(iter(self.config.clusters))
        if name in self._clients:
            return self._clients[name]
        if self._stack is None:
            raise RuntimeError("the App is not started: use `async with App(config) as app`")
        async with self._opening:
            if name not in self._clients:
                from pvemcp.core.pve.client import PveClient

                self._clients[name] = await self._stack.enter_async_context(PveClient(self.config.clusters[name]))
        return self._clients[name]

    async def warm_up(self) -> None:
        """Load what the first call needs, so that it costs what the second does (the door runs this in
        the background once the client is connected).

        In order: :meth:`warm_code` (CPU work), then :meth:`warm_cluster` (network). A failure stops the
        warm-up and is logged; the first call then meets the same problem itself and reports it in
        Proxmox's words.
        """
        await self.warm_code()
        await self.warm_cluster()

    async def warm_code(self) -> None:
        """The deferred imports and the API spec (in a worker thread: the event loop keeps answering), then
        the argument validators of the listed tools. Skipped when a call came first: it does its imports and
        validator itself, and warming them meanwhile on the same event loop would only slow it down."""
        if self._called:
            return
        self._imported = anyio.Event()
        try:
            await anyio.to_thread.run_sync(_warm_imports, self._spec is None)
        finally:
            self._imported.set()
        for tool in self.tools():
            self._validator(tool).is_valid({})
            await anyio.sleep(0)  # a call that arrives meanwhile is not kept waiting

    async def warm_cluster(self) -> None:
        """The default cluster's client with its TLS connection, and the guest index (a failure is logged)."""
        client = await self.client()  # the connection and the guest index are shared with any call
        try:
            await client.list_guests()
        except PveError as exc:
            log.info("warm-up: the guest index could not be loaded (%s); the first call will retry", exc)

    # ------------------------------------------------------------------ listing
    def tools(self) -> list[ToolDef]:
        """The tools the policy lets this server list (read-only hides mutating tools)."""
        if self._visible is None:
            policy = self.config.policy
            selected = self.catalog.select(policy.toolsets, read_only=policy.read_only)
            self._visible = {t.name: t for t in selected if not self.listing_decision(t).denied}
        return list(self._visible.values())

    def listing_decision(self, tool: ToolDef) -> Decision:
        """Whether ``tool`` is listed: its rule and risk class, and a curated tool's operations (``listing_decision``
        of the policy); the listing, a call of a hidden tool and ``pvemcp check`` all ask here."""
        operations = () if tool.per_call_risk else tool.operations.values()
        return listing_decision(self.config.policy, tool.name, tool.listing_risk, operations)

    def _validator(self, tool: ToolDef) -> Any:
        """The tool's compiled argument validator, built on its first call (listing needs none)."""
        validator = self._validators.get(tool.name)
        if validator is None:
            import jsonschema

            validator = self._validators[tool.name] = jsonschema.Draft202012Validator(tool.validation_schema)
        return validator

    def tool(self, name: str) -> ToolDef | None:
        self.tools()
        assert self._visible is not None
        return self._visible.get(name)

    # ------------------------------------------------------------------ calling
    def _kind(self, tool: ToolDef) -> HandlerKind:
        """The record of the tool's handler kind, written beside its function in the module the catalog build
        found it in (``ToolDef.kind_module``, as ``GUEST_ACTION`` for ``guest_action``); the module is imported on
        the kind's first call, so a start that only lists tools imports none."""
        kind = self._kinds.get(tool.handler)
        if kind is None:
            module = importlib.import_module(tool.kind_module)
            kind = self._kinds[tool.handler] = getattr(module, tool.handler.upper())
        return kind

    async def call(self, name: str, arguments: Mapping[str, Any] | None, ctx: CallContext) -> Outcome:
        """One tool call through the pipeline: prepare -> govern -> confirm -> execute -> audit."""
        self._called = True
        tool = self.tool(name)
        if tool is None:
            return await self._not_listed(name, ctx)
        if self.state is not None and (limited := await self.state.admit(ctx.caller)) is not None:
            return refusal("rate_limited", f"{name}: {limited}")
        if self._imported is not None:  # a call during the warm-up's imports waits for them (CPU work,
            await self._imported.wait()  # bounded) rather than import and parse the spec a second time
        original = dict(arguments or {})
        from pvemcp.core.tools.args import non_finite_path, validation_error_text
        from pvemcp.core.tools.objects import ScopeRefused

        errors = sorted(self._validator(tool).iter_errors(original), key=lambda e: list(e.path))
        if errors:
            _, sentence = validation_error_text(errors[0])
            return _error(f"Invalid arguments for {name}: {sentence}. Nothing was sent.")
        if (where := non_finite_path(original)) is not None:
            return _error(
                f"Invalid arguments for {name}: {where} is not a finite number (NaN and Infinity are not JSON); "
                "pass a number. Nothing was sent."
            )
        if ctx.call_id is None:
            ctx = replace(ctx, call_id=new_call_id())
        args = {k: v for k, v in original.items() if k not in _CONTROL_KEYS}
        control = {k: original[k] for k in _CONTROL_KEYS if k in original}
        try:
            client = await self.client(control.get("cluster"))
            rc = RunContext(
                tool,
                args,
                client,
                self.spec,
                ctx,
                # undo reads its before-states back from the file ledger; the shared (PostgreSQL) one has none
                ledger=self._ledger if isinstance(self._ledger, AuditLedger) else None,
                safety_snapshot=self.config.policy.safety_snapshot,
            )
            mode = self._kind(tool).mode
            if mode is Mode.READ:
                return await self._read(rc)
            # a plan that may change the cluster is built from what Proxmox has now, not from the guest index
            # cached for reads: the question names the current state, and another replica (or person) may
            # have changed it since this process last looked
            plan = await self._prepare(rc, control, fresh=mode is not Mode.GENERIC_READ)
            if mode is Mode.GENERIC_READ:
                return await self._read_generic(rc, plan)
            return await self._govern(rc, plan, control, original)
        except ScopeRefused as exc:
            return refusal("scope", f"{name}: {str(exc).rstrip('.')}. Nothing was sent.", exc.subjects)
        except ToolError as exc:
            return _tool_error(name, exc)
        except PveError as exc:
            return _error(f"{name}: {exc}")

    async def _not_listed(self, name: str, ctx: CallContext) -> Outcome:
        """A call of a tool this server does not list. One that read-only mode or a deny rule hides is
        refused with that reason (and audited), so that it does not look like a tool that was never
        written; one outside the chosen toolsets, or unknown, is an unknown tool."""
        hidden = self.catalog.tools.get(name)
        if hidden is None:
            return UnknownTool(name)
        decision = self.listing_decision(hidden)
        if not decision.denied:
            return UnknownTool(name)
        await self._audit(name, ctx, Audit.DENIED, detail=decision.reason)
        reason = "read_only" if decision.rule == "read_only" else "rule"
        return refusal(reason, f"{name}: refused by policy: {decision.reason.rstrip('.')}. Nothing was sent.")

    async def record_declined(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        ctx: CallContext,
        action: str,
        *,
        plan_digest: str | None = None,
    ) -> ToolResult:
        """The user declined (or cancelled) the confirmation: record it; nothing reaches Proxmox."""
        await self._audit(
            name, ctx, Audit.DECLINED, arguments=dict(arguments or {}), detail=action, plan_digest=plan_digest
        )
        return refusal(
            "declined",
            f"{name}: the user {action}d the confirmation; nothing was sent to Proxmox.",
            confirmation={"status": action},
        )

    async def record_expired(
        self, name: str, arguments: Mapping[str, Any] | None, ctx: CallContext, *, plan_digest: str | None = None
    ) -> ToolResult:
        """Nobody answered the question before ``elicitation_timeout_s``: the call ends, nothing is sent."""
        limit = self.config.policy.elicitation_timeout_s
        await self._audit(
            name,
            ctx,
            Audit.EXPIRED,
            arguments=dict(arguments or {}),
            detail=f"no answer in {limit:g}s",
            plan_digest=plan_digest,
        )
        return self.expired_result(name)

    def expired_result(self, name: str) -> ToolResult:
        """The refusal of a call whose question expired (already audited)."""
        limit = self.config.policy.elicitation_timeout_s
        return refusal(
            "expired",
            f"{name}: the confirmation was not answered within {limit:g}s; nothing was sent to Proxmox. "
            "Call again to ask the user again.",
        )

    # ------------------------------------------------------------------ prepare
    async def _prepare(self, rc: RunContext, control: JsonDict, *, fresh: bool = False) -> Plan:
        """Plan the call: its exact requests and every object they touch, with current facts.

        ``fresh``: a plan that may change the cluster (previewed, confirmed or about to be sent); the guest
        list is fetched again rather than taken from the client's short-lived cache, so the question shows
        and the digest binds what Proxmox has now, and the plan compared with the confirmed one is current.
        """

        from pvemcp.core.tools.objects import plan_objects

        if fresh:
            resolver = getattr(rc.client, "_guest_resolver", None)  # the client's guest cache
            if resolver is not None:
                resolver().invalidate()
        plan: Plan = await self._kind(rc.tool).function(rc)
        if "wait" in control:
            plan.wait = int(control["wait"])
        self.plans_built += 1
        await plan_objects(rc, plan)
        return plan

    # ------------------------------------------------------------------ reads
    async def _read(self, rc: RunContext) -> ToolResult:
        from pvemcp.core.tools import guests
        from pvemcp.core.tools.objects import visible_in_scope

        kind = self._kind(rc.tool)
        result: ToolResult
        if kind.read_scope is ReadScope.NONE:
            result = await kind.function(rc)
            return result
        scope = self.config.policy.scope
        inventory = None if scope.unrestricted else {g.vmid: g for g in await rc.client.list_guests()}
        if kind.read_scope is ReadScope.FILTERS:
            visible = None if inventory is None else functools.partial(visible_in_scope, scope, inventory)
            result = await kind.function(rc, visible=visible)
            return result
        if inventory is not None:
            rc.visible = functools.partial(visible_in_scope, scope, inventory)
            probe = None
            if rc.tool.guest_scoped:
                (guest,) = await guests.resolve_targets(rc)
                template = rc.tool.operations[guest.type].split(" ", 1)[1]
                probe = PlannedCall("GET", template, {"node": guest.node, "vmid": guest.vmid}, {}, False)
            elif kind.read_scope is ReadScope.OPERATION:  # its node (and guest, volume) must be in scope
                from pvemcp.core.tools.args import path_arguments

                op = rc.spec.operation(next(iter(rc.tool.operations.values())))
                path = path_arguments(op, rc.args)
                query = {k: v for k, v in rc.args.items() if k in rc.tool.api_params and k not in path}
                probe = PlannedCall("GET", op.path, path, query, False)
            elif "upid" in rc.args:  # task_log, task_status: the task's guest must be in scope
                from pvemcp.core.tools.args import task_node

                probe = PlannedCall(
                    "GET",
                    "/nodes/{node}/tasks/{upid}/status",
                    {"node": task_node(str(rc.args["upid"])), "upid": str(rc.args["upid"])},
                    {},
                    False,
                )
            elif rc.args.get("node"):  # storage_list, task_list ... of one node: the node must be allowed
                probe = PlannedCall("GET", "/nodes/{node}", {"node": str(rc.args["node"])}, {}, False)
            if probe is not None:
                self._check_scope([probe], inventory)
        result = await kind.function(rc)
        return result

    async def _read_generic(self, rc: RunContext, plan: Plan) -> ToolResult:
        """api_get: governed like a write (rules, read scope over what it names), then filtered."""
        from pvemcp.core.tools.objects import check_plan_scope, scoped_view

        decision = self._decide(rc.tool, plan)
        if decision.denied or decision.needs_confirmation:
            # a read is never confirmed: one the rules want confirmed (a guest's files, say) is refused here
            await self._audit(rc.tool.name, rc.call, Audit.DENIED, plan=plan, detail=decision.reason)
            return refusal("rule", f"{rc.tool.name}: refused by policy: {decision.reason.rstrip('.')}.")
        check_plan_scope(self.config.policy.scope, plan)
        (call,) = plan.calls
        data = await rc.client.get(call.template, path=call.path, params=call.args)
        scope = self.config.policy.scope
        hidden = 0
        if not scope.unrestricted:
            data, hidden = scoped_view(scope, plan.facts, data)
        size = (
            f"{len(data)} entries"
            if isinstance(data, list)
            else f"{len(data)} fields"
            if isinstance(data, Mapping)
            else str(data)[:80]
        )
        note = f" ({hidden} outside the scope not shown)" if hidden else ""
        return ToolResult({"data": data}, f"GET {call.concrete_path}: {size}{note}")

    def _check_scope(self, calls: list[PlannedCall], inventory: Mapping[int, GuestRef]) -> None:
        from pvemcp.core.policy.targets import check_call, extract_targets
        from pvemcp.core.tools.objects import raise_scope

        scope = self.config.policy.scope
        violations = []
        for call in calls:
            targets = extract_targets(call.method, call.template, {**call.path, **call.args})
            violations.extend(check_call(scope, targets, inventory))
        raise_scope(scope, violations)

    # ------------------------------------------------------------------ govern
    def _decide(self, tool: ToolDef, plan: Plan) -> Decision:
        """One decision per request (rules by operation, tool, for a generic tool the curated tools that drive
        it, risk class; read-only first); the call gets the strictest."""
        from pvemcp.core.policy.risk import classify_call, max_risk

        policy = self.config.policy
        declared = [] if tool.per_call_risk else [tool.risk, plan.risk]
        decisions = []
        for call in plan.calls:
            risk = max_risk([*declared, classify_call(call.method, call.template, {**call.path, **call.args})])
            operation = f"{call.method} {call.template}"
            decisions.append(
                decide(
                    policy,
                    tool.name,
                    risk,
                    operation=operation,
                    drivers=[*self.catalog.drivers(operation), *ALSO_DRIVEN_BY.get(operation, ())],
                    generic=tool.per_call_risk,
                )
            )
        return strictest(decisions) or decide(policy, tool.name, tool.risk)

    async def _govern(
        self, rc: RunContext, plan: Plan, control: JsonDict, original: JsonDict
    ) -> ToolResult | ConfirmationNeeded:
        from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationFailure
        from pvemcp.core.tools.objects import ScopeRefused, check_plan_scope

        tool, ctx = rc.tool, rc.call
        policy = self.config.policy
        decision = self._decide(tool, plan)
        digest = plan.digest()
        if decision.denied:
            await self._audit(tool.name, ctx, Audit.DENIED, plan=plan, detail=decision.reason)
            reason = "read_only" if decision.rule == "read_only" else "rule"
            return refusal(reason, f"{tool.name}: refused by policy: {decision.reason.rstrip('.')}. Nothing was sent.")
        try:
            check_plan_scope(policy.scope, plan)
        except ScopeRefused as exc:
            await self._audit(tool.name, ctx, Audit.DENIED, plan=plan, detail=str(exc))
            raise
        if control.get("dry_run"):
            await self._audit(tool.name, ctx, Audit.DRY_RUN, plan=plan, risk=decision.risk, arguments=original)
            return self._dry_run(tool, plan, decision)
        if ctx.confirmed:
            if ctx.confirmed_plan != digest:
                return await self._plan_changed(rc, plan, original, "the user confirmed")
        elif decision.needs_confirmation:
            method = confirmation_method(policy, elicitation_supported=ctx.can_elicit)
            question = self._question(tool, plan)
            if method == "elicit":
                await self._audit(tool.name, ctx, Audit.PENDING, plan=plan, risk=decision.risk, arguments=original)
                return ConfirmationNeeded(question, tool.name, original, plan_digest=digest, call_id=ctx.call_id)
            if method == "deny":
                await self._audit(tool.name, ctx, Audit.DENIED, plan=plan, detail="confirmation impossible")
                return refusal(
                    "no_confirmation",
                    f"{tool.name} needs the user's confirmation, but this client cannot ask (no elicitation) and "
                    "the token fallback is disabled (confirm_fallback = deny). Nothing was sent.",
                )
            token = control.get("confirm_token")
            if not token:
                return await self._preview(rc, plan, question, original)
            try:
                await self._confirmations.redeem_once(str(token), tool.name, {"plan": digest}, ctx.caller)
            except ConfirmationError as exc:
                if exc.reason is ConfirmationFailure.OTHER_ARGUMENTS:
                    return await self._plan_changed(rc, plan, original, "the token was issued")
                await self._audit(tool.name, ctx, Audit.DENIED, plan=plan, detail=f"confirmation token: {exc}")
                why = "expired" if exc.reason is ConfirmationFailure.EXPIRED else "token"
                return refusal(
                    why, f"{tool.name}: confirmation token refused: {str(exc).rstrip('.')}. Nothing was sent."
                )
        outcome = Audit.CONFIRMED if decision.needs_confirmation or ctx.confirmed else Audit.ALLOWED
        via = ("elicitation" if ctx.confirmed else "token") if outcome is Audit.CONFIRMED else None
        await self._audit(tool.name, ctx, outcome, plan=plan, risk=decision.risk, arguments=original, via=via)
        return await self._execute(rc, plan)

    async def _preview(self, rc: RunContext, plan: Plan, question: str, original: JsonDict) -> ToolResult:
        """The token fallback's first call: the question, the exact plan, and a token bound to its digest."""
        preview = await self._issue_token(rc, plan, question, original)
        return ToolResult(
            {"confirmation": preview},
            f"Confirmation needed: {question} Ask the user; if they agree, call {rc.tool.name} again with the "
            f"same arguments and confirm_token={preview['confirm_token']!r}.",
        )

    async def _issue_token(self, rc: RunContext, plan: Plan, question: str, original: JsonDict) -> JsonDict:
        """A single-use token bound to the plan's digest, recorded as ``previewed``; the preview it goes in."""
        digest = plan.digest()
        issued = self._confirmations.issue(rc.tool.name, {"plan": digest}, rc.call.caller)
        await self._audit(rc.tool.name, rc.call, Audit.PREVIEWED, plan=plan, arguments=original, plan_digest=digest)
        return {
            "required": True,
            "question": question,
            "confirm_token": issued,
            "expires_in_s": int(self.config.policy.confirm_ttl_s),
            "requests": [c.describe() for c in plan.calls],
            "targets": [o.to_json() for o in plan.objects],
            **({"notes": plan.notes} if plan.notes else {}),
            "plan_digest": digest,
        }

    async def _plan_changed(self, rc: RunContext, plan: Plan, original: JsonDict, when: str) -> ToolResult:
        """The plan differs from the one confirmed: send nothing; with tokens, preview the new plan."""
        tool = rc.tool
        await self._audit(tool.name, rc.call, Audit.PLAN_CHANGED, plan=plan, arguments=original)
        now = "; ".join(o.label() for o in plan.objects if o.kind != "node") or "no target"
        message = (
            f"{tool.name}: the requests or their targets changed since {when} (now: {now}); "
            "nothing was sent. Ask the user again about the new plan."
        )
        if rc.call.confirmed:
            return refusal("plan_changed", message)
        preview = await self._issue_token(rc, plan, self._question(tool, plan), original)
        message += f" A new confirm_token for it is in the result: {preview['confirm_token']!r}."
        return refusal("plan_changed", message, confirmation=preview)

    def _question(self, tool: ToolDef, plan: Plan) -> str:
        from pvemcp.core.tools.objects import render_question

        return render_question(tool, plan)

    def _dry_run(self, tool: ToolDef, plan: Plan, decision: Decision) -> ToolResult:
        data = {
            "requests": [c.describe() for c in plan.calls],
            "targets": [o.to_json() for o in plan.objects],
            **({"notes": plan.notes} if plan.notes else {}),
            "plan_digest": plan.digest(),
            "policy": {"decision": decision.action.value, "risk": decision.risk.value, "reason": decision.reason},
        }
        text = f"Dry run of {tool.name}: {len(plan.calls)} request(s), policy: {decision.action.value}. Nothing sent."
        return ToolResult({"dry_run": data}, text)

    async def _execute(self, rc: RunContext, plan: Plan) -> ToolResult:
        results: list[JsonDict | None] = [None] * len(plan.calls)
        digest = plan.digest()
        limiter = anyio.CapacityLimiter(BATCH_CONCURRENCY)
        done = 0
        single = len(plan.calls) == 1

        async def progress(value: float, total: float | None, message: str) -> None:
            if single:
                await rc.progress(value, total, message)

        async def run(index: int, call: PlannedCall) -> None:
            nonlocal done
            async with limiter:
                results[index] = await self._run_call(rc, call, plan.wait, progress, plan_digest=digest)
            done += 1
            if not single:
                await rc.progress(float(done), float(len(plan.calls)), f"{done}/{len(plan.calls)} done")

        async with anyio.create_task_group() as tg:
            for index, call in enumerate(plan.calls):
                tg.start_soon(run, index, call)
        from pvemcp.core.tools.conclude import conclude

        return await conclude(rc, plan, [r for r in results if r is not None])

    async def _run_call(
        self,
        rc: RunContext,
        call: PlannedCall,
        wait: int,
        progress: ProgressFn,
        *,
        plan_digest: str | None = None,
    ) -> JsonDict:
        """Send one request of the plan being executed (the re-planned one, after a confirmation).

        Its hooks run here and only here, once per request sent: ``before`` (the policy's safety step; if
        it fails, the request is not sent) and, after Proxmox accepted it, ``after`` (an exec's wait, a
        config change's undo record); what they return goes into the ledger record's details."""
        item: JsonDict = _target_fields(call)
        if call.before is not None:
            try:
                note = await call.before(rc, call)
                if note:
                    item["safety"] = note
            except (PveError, ToolError) as exc:
                item.update(ok=False, error=f"safety step failed, so the request was not sent: {exc}")
                await self._audit(
                    rc.tool.name, rc.call, Audit.FAILED, calls=[call], detail=item["error"], plan_digest=plan_digest
                )
                return item
        try:
            envelope = await rc.client.request(
                call.method,
                call.template,
                path=call.path,
                params=call.args if call.method in ("GET", "DELETE") else None,
                data=call.args if call.method in ("POST", "PUT") else None,
            )
        except PveError as exc:
            item.update(ok=False, error=str(exc))
            await self._audit(
                rc.tool.name, rc.call, Audit.FAILED, calls=[call], detail=str(exc), plan_digest=plan_digest
            )
            return item
        data = envelope.data
        if call.task and isinstance(data, str) and data.startswith("UPID:"):
            item["upid"] = data
            if wait > 0:
                result = await rc.client.wait_task(data, deadline_s=wait, on_progress=progress)
                item.update({k: v for k, v in result.to_dict().items() if k not in ("upid", "node")})
                item["ok"] = result.ok or result.timed_out
                if result.timed_out:
                    item["note"] = f"still running after {wait}s; follow it with task_status"
                elif not result.ok:
                    item["error"] = result.exitstatus
            else:
                item.update(ok=True, status="running")
        else:
            item.update(ok=True, result=data)
        extra = None
        if call.after is not None and item["ok"]:
            try:
                extra = await call.after(rc, call, item)
            except PveError as exc:  # the request itself went through: say so, and what could not be read
                item["warning"] = f"the request succeeded, but reading its outcome failed: {exc}"
        if "safety" in item:
            extra = {**(extra or {}), "safety": item["safety"]}
        await self._audit(
            rc.tool.name,
            rc.call,
            Audit.SUCCEEDED if item["ok"] else Audit.FAILED,
            calls=[call],
            upid=item.get("upid"),
            detail=item.get("error"),
            plan_digest=plan_digest,
            extra=extra,
        )
        return item

    # ------------------------------------------------------------------ audit
    async def _audit(
        self,
        tool: str,
        ctx: CallContext,
        outcome: Audit,
        *,
        plan: Plan | None = None,
        calls: list[PlannedCall] | None = None,
        arguments: JsonDict | None = None,
        upid: str | None = None,
        detail: str | None = None,
        risk: Risk | None = None,
        via: str | None = None,
        plan_digest: str | None = None,
        extra: JsonDict | None = None,
    ) -> None:
        """One ledger record with the call id and the plan digest (secrets redacted by the ledger).
        A write failure propagates: fail closed."""
        if self._ledger is None:
            return
        chosen = calls if calls is not None else (plan.calls if plan is not None else [])
        failed = outcome in (Audit.FAILED, Audit.DENIED)
        if plan is not None and plan_digest is None:
            plan_digest = plan.digest()
        labels = [o.label() for o in plan.objects] if plan is not None and calls is None else []
        await self._ledger.append_async(
            outcome,
            tool=tool,
            caller=ctx.caller,
            call_id=ctx.call_id,
            plan_digest=plan_digest,
            risk=risk or (plan.risk if plan is not None else None),
            target=labels or [c.label for c in chosen] or None,
            args=arguments,
            upid=upid,
            error=detail if failed else None,
            reason=detail if not failed else None,
            via=via,
            details={"requests": [c.describe() for c in chosen], **(extra or {})} if chosen else None,
        )

    # ------------------------------------------------------------------ resources
    def resources(self) -> list[ResourceView]:
        from pvemcp.core.tools.resources import list_resources

        return list_resources()

    async def read_resource(self, uri: str) -> str:
        from pvemcp.core.tools.resources import read_resource

        return await read_resource(self, uri)


def _target_fields(call: PlannedCall) -> JsonDict:
    """Who a result is about; a create names the new vmid, a clone its newid."""
    if call.target is None:
        out: JsonDict = {"label": call.label}
        if isinstance(call.args.get("vmid"), int):
            out["vmid"] = call.args["vmid"]
        return out
    guest = call.target
    out = {"vmid": guest.vmid, "name": guest.name, "node": guest.node, "type": guest.type}
    if "newid" in call.args:
        out["newid"] = call.args["newid"]
    return out


def _error(text: str) -> ToolResult:
    return ToolResult({}, text, is_error=True)


def _tool_error(tool: str, exc: ToolError) -> ToolResult:
    """A refusal before anything was sent; a batch selector that matches no guest is no error: nothing to do."""
    from pvemcp.core.tools.guests import NothingMatched

    if isinstance(exc, NothingMatched):
        return ToolResult({"results": [], "ok": 0, "failed": 0}, f"{tool}: {exc}; nothing to do.")
    return _error(f"{tool}: {str(exc).rstrip('.')}. Nothing was sent.")
