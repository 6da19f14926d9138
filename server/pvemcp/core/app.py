"""The App: the whole tool pipeline, for any door (MCP, CLI).

A call goes: look up the tool -> validate arguments against its schema -> plan (resolve guests,
build the exact requests; only GETs sent) -> scope check of every target -> risk and policy
decision -> dry run, or confirmation (elicitation via the door, or the single-use token fallback)
-> execute with bounded concurrency, waiting for tasks with progress -> audit -> a compact result.
Reads skip planning but still honour the scope.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio

from pvemcp.core.catalog import CONTROL_HELP, Catalog, ToolDef
from pvemcp.core.catalog_cache import cache_dir, load_catalog
from pvemcp.core.config import AppConfig, load_app_config
from pvemcp.core.policy.confirm import ConfirmationError, ConfirmationStore
from pvemcp.core.policy.decision import Decision, confirmation_method, decide
from pvemcp.core.pve.errors import PveError
from pvemcp.core.resources import data_file
from pvemcp.core.spec.model import Spec, load_spec
from pvemcp.core.state import LedgerWriter, StateStore, open_state
from pvemcp.core.tools.base import (
    CallContext,
    ConfirmationNeeded,
    JsonDict,
    Outcome,
    Plan,
    PlannedCall,
    RunContext,
    ToolError,
    ToolResult,
    UnknownTool,
)
from pvemcp.core.tools.resources import ResourceView, list_resources, read_resource

if TYPE_CHECKING:
    from pvemcp.core.policy.scope import GuestFacts
    from pvemcp.core.pve.client import PveClient
    from pvemcp.core.pve.resolve import GuestRef

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

Reader = Callable[[RunContext], Awaitable[ToolResult]]
Planner = Callable[[RunContext], Awaitable[Plan]]

# Handler kinds of tools.yaml that only read; the others plan mutations (or are the generic tool).
_READ_KINDS = frozenset(
    {"guest_read", "api_read", "storage_list", "cluster_status", "next_vmid", "task_list", "task_status"}
    | {"task_log", "guest_list", "api_search"}
)


@functools.cache
def _handlers() -> tuple[dict[str, Planner], dict[str, Reader]]:
    """The handler modules, imported on the first call: a server start that only lists tools skips them."""
    from pvemcp.core.tools import guests, reads

    planners: dict[str, Planner] = {
        "guest_action": guests.plan_guest_action,
        "guest_create": guests.plan_create,
        "guest_clone": guests.plan_clone,
        "guest_config_set": guests.plan_config_set,
        "backup_now": guests.plan_backup_now,
        "api_write": guests.plan_operation,
        "task_stop": guests.plan_task_stop,
    }
    readers: dict[str, Reader] = {
        "guest_read": reads.guest_read,
        "api_read": reads.api_read,
        "storage_list": reads.storage_list,
        "cluster_status": reads.cluster_status,
        "next_vmid": reads.next_vmid,
        "task_list": reads.task_list,
        "task_status": reads.task_status,
        "task_log": reads.task_log,
    }
    return planners, readers


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
        if confirmations is None:  # (a store with no entries is falsy: it has a length)
            confirmations = ConfirmationStore(ttl_s=config.policy.confirm_ttl_s)
        self._confirmations = confirmations
        self.state: StateStore | None = None
        self._ledger: LedgerWriter | None = None
        self._visible: dict[str, ToolDef] | None = None
        self._validators: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> App:
        """Start: open the audit ledger. Clients connect on their first call, so a server that is only
        listed (or misconfigured for one of several clusters) starts fast and reports errors per call."""
        self._stack = AsyncExitStack()
        self.state = await self._stack.enter_async_context(open_state(self.config.policy))
        self._ledger = self.state.ledger
        if self._own_confirmations and self.state.spender is not None:  # replicas: tokens verify on any of them
            self._confirmations = ConfirmationStore(
                self.state.confirm_secret(), ttl_s=self.config.policy.confirm_ttl_s, spender=self.state.spender
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._clients.clear()

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

    # ------------------------------------------------------------------ listing
    def tools(self) -> list[ToolDef]:
        """The tools the policy lets this server list (read-only hides mutating tools)."""
        if self._visible is None:
            policy = self.config.policy
            selected = self.catalog.select(policy.toolsets, read_only=policy.read_only)
            self._visible = {t.name: t for t in selected if not decide(policy, t.name, t.listing_risk).denied}
        return list(self._visible.values())

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
    async def call(self, name: str, arguments: Mapping[str, Any] | None, ctx: CallContext) -> Outcome:
        tool = self.tool(name)
        if tool is None:
            return UnknownTool(name)
        if self.state is not None and (limited := await self.state.admit(ctx.caller)) is not None:
            return _error(f"{name}: {limited}")
        original = dict(arguments or {})
        from pvemcp.core.tools import api
        from pvemcp.core.tools.args import validation_error_text

        errors = sorted(self._validator(tool).iter_errors(original), key=lambda e: list(e.path))
        if errors:
            _, sentence = validation_error_text(errors[0])
            return _error(f"Invalid arguments for {name}: {sentence}. Nothing was sent.")
        args = {k: v for k, v in original.items() if k not in _CONTROL_KEYS}
        control = {k: original[k] for k in _CONTROL_KEYS if k in original}
        planners, _ = _handlers()
        try:
            rc = RunContext(tool, args, await self.client(control.get("cluster")), self.spec, ctx)
            if tool.handler in _READ_KINDS:
                return await self._read(rc)
            planner = planners.get(tool.handler)
            if planner is not None:
                plan = await planner(rc)
            elif tool.handler == "api_call":
                plan = api.plan_api_call(rc)
            else:
                raise RuntimeError(f"tools.yaml names handler {tool.handler!r}, which pvemcp does not have")
            if "wait" in control:
                plan.wait = int(control["wait"])
            return await self._govern(rc, plan, control, original)
        except ToolError as exc:
            return _error(f"{name}: {str(exc).rstrip('.')}. Nothing was sent.")
        except PveError as exc:
            return _error(f"{name}: {exc}")

    async def record_declined(
        self, name: str, arguments: Mapping[str, Any] | None, ctx: CallContext, action: str
    ) -> ToolResult:
        """The user declined (or cancelled) the confirmation: record it; nothing reaches Proxmox."""
        await self._audit(name, ctx, "declined", arguments=dict(arguments or {}), detail=action)
        return ToolResult(
            {"confirmation": {"status": action}},
            f"{name}: the user {action}d the confirmation; nothing was sent to Proxmox.",
            is_error=True,
        )

    async def _read(self, rc: RunContext) -> ToolResult:
        from pvemcp.core.tools import api, guests, reads

        _, readers = _handlers()
        if rc.tool.handler == "guest_list":
            inventory = None
            if not self.config.policy.scope.unrestricted:
                inventory = {g.vmid: _facts(g) for g in await rc.client.list_guests()}
            return await reads.guest_list(rc, lambda e: self._in_scope(int(e.get("vmid", 0)), inventory))
        if rc.tool.handler == "api_search":
            return api.api_search(rc)
        if rc.tool.guest_scoped:
            (guest,) = await guests.resolve_targets(rc)
            template = rc.tool.operations[guest.type].split(" ", 1)[1]
            probe = PlannedCall("GET", template, {"node": guest.node, "vmid": guest.vmid}, {}, False)
            await self._check_scope([probe], rc)
        return await readers[rc.tool.handler](rc)

    def _in_scope(self, vmid: int, inventory: Mapping[int, GuestFacts] | None) -> bool:
        from pvemcp.core.policy.targets import check_call, extract_targets

        scope = self.config.policy.scope
        if scope.unrestricted:
            return True
        facts = inventory.get(vmid) if inventory else None
        node = facts.node if facts and facts.node else None
        targets = extract_targets("GET", "/nodes/{node}/qemu/{vmid}", {"vmid": vmid, "node": node or "-"})
        return not check_call(scope, targets, inventory)

    async def _check_scope(self, calls: list[PlannedCall], rc: RunContext) -> None:
        from pvemcp.core.policy.targets import check_call, extract_targets

        scope = self.config.policy.scope
        if scope.unrestricted:
            return
        inventory = {g.vmid: _facts(g) for g in await rc.client.list_guests()}
        violations = []
        for call in calls:
            targets = extract_targets(call.method, call.template, {**call.path, **call.args})
            violations.extend(check_call(scope, targets, inventory))
        if violations:
            details = "; ".join(str(v) for v in violations)
            raise ToolError(f"outside the allowed scope ({scope.describe()}): {details}")

    async def _govern(
        self, rc: RunContext, plan: Plan, control: JsonDict, original: JsonDict
    ) -> ToolResult | ConfirmationNeeded:
        from pvemcp.core.policy.risk import classify_call, max_risk

        tool, ctx = rc.tool, rc.call
        policy = self.config.policy
        try:
            await self._check_scope(plan.calls, rc)
        except ToolError as exc:
            await self._audit(tool.name, ctx, "denied", plan=plan, detail=str(exc))
            raise
        call_risks = [classify_call(c.method, c.template, {**c.path, **c.args}) for c in plan.calls]
        # A curated tool is at least as risky as it declares; the generic tool is as risky as its call.
        declared = [] if tool.per_call_risk else [tool.risk]
        risk = max_risk([*declared, plan.risk, *call_risks])
        decision = decide(policy, tool.name, risk)
        if control.get("dry_run"):
            return self._dry_run(tool, plan, decision)
        if decision.denied:
            await self._audit(tool.name, ctx, "denied", plan=plan, detail=decision.reason)
            return _error(f"{tool.name}: refused by policy: {decision.reason.rstrip('.')}. Nothing was sent.")
        if decision.needs_confirmation and not ctx.confirmed:
            method = confirmation_method(policy, elicitation_supported=ctx.can_elicit)
            question = self._question(tool, plan)
            if method == "elicit":
                return ConfirmationNeeded(question, tool.name, original)
            if method == "deny":
                await self._audit(tool.name, ctx, "denied", plan=plan, detail="confirmation impossible")
                return _error(
                    f"{tool.name} needs the user's confirmation, but this client cannot ask (no elicitation) and "
                    "the token fallback is disabled (confirm_fallback = deny). Nothing was sent."
                )
            token = control.get("confirm_token")
            bound_args = {k: v for k, v in original.items() if k != "confirm_token"}
            if not token:
                issued = self._confirmations.issue(tool.name, bound_args, ctx.caller)
                preview = {
                    "required": True,
                    "question": question,
                    "confirm_token": issued,
                    "expires_in_s": int(policy.confirm_ttl_s),
                    "requests": [c.describe() for c in plan.calls],
                }
                return ToolResult(
                    {"confirmation": preview},
                    f"Confirmation needed: {question} Ask the user; if they agree, call {tool.name} again with the "
                    f"same arguments and confirm_token={issued!r}.",
                )
            try:
                await self._confirmations.redeem_once(str(token), tool.name, bound_args, ctx.caller)
            except ConfirmationError as exc:
                await self._audit(tool.name, ctx, "denied", plan=plan, detail=f"confirmation token: {exc}")
                return _error(f"{tool.name}: confirmation token refused: {str(exc).rstrip('.')}. Nothing was sent.")
        outcome = "confirmed" if decision.needs_confirmation else "allowed"
        via = ("elicitation" if ctx.confirmed else "token") if decision.needs_confirmation else None
        await self._audit(tool.name, ctx, outcome, plan=plan, risk=decision.risk.value, arguments=original, via=via)
        return await self._execute(rc, plan)

    def _question(self, tool: ToolDef, plan: Plan) -> str:
        lines = []
        for call in plan.calls:
            target = call.target
            state = f", currently {target.status}" if target is not None else ""
            lines.append(f"{call.label}{state}")
        what = tool.title if len(lines) != 1 else tool.title.replace("guests", "guest").replace("snapshots", "snapshot")
        consequence = f" Consequence: {tool.consequence}." if tool.consequence else ""
        return f"{what}: {'; '.join(lines)}?{consequence}"

    def _dry_run(self, tool: ToolDef, plan: Plan, decision: Decision) -> ToolResult:
        data = {
            "requests": [c.describe() for c in plan.calls],
            "policy": {"decision": decision.action.value, "risk": decision.risk.value, "reason": decision.reason},
        }
        text = f"Dry run of {tool.name}: {len(plan.calls)} request(s), policy: {decision.action.value}. Nothing sent."
        return ToolResult({"dry_run": data}, text)

    async def _execute(self, rc: RunContext, plan: Plan) -> ToolResult:
        results: list[JsonDict | None] = [None] * len(plan.calls)
        limiter = anyio.CapacityLimiter(BATCH_CONCURRENCY)
        done = 0
        single = len(plan.calls) == 1

        async def progress(value: float, total: float | None, message: str) -> None:
            if single:
                await rc.progress(value, total, message)

        async def run(index: int, call: PlannedCall) -> None:
            nonlocal done
            async with limiter:
                results[index] = await self._run_call(rc, call, plan.wait, progress)
            done += 1
            if not single:
                await rc.progress(float(done), float(len(plan.calls)), f"{done}/{len(plan.calls)} done")

        async with anyio.create_task_group() as tg:
            for index, call in enumerate(plan.calls):
                tg.start_soon(run, index, call)
        items = [r for r in results if r is not None]
        ok = sum(1 for r in items if r.get("ok"))
        failed = len(items) - ok
        if rc.tool.output_schema.get("properties", {}).get("results") is None:
            item = items[0]
            text = _line(rc.tool.name, item)
            return ToolResult({"data": item}, text, is_error=not item.get("ok"))
        text = f"{rc.tool.name}: {ok} ok, {failed} failed — " + "; ".join(_line("", r).strip() for r in items)
        return ToolResult({"results": items, "ok": ok, "failed": failed}, text, is_error=ok == 0)

    async def _run_call(
        self,
        rc: RunContext,
        call: PlannedCall,
        wait: int,
        progress: Callable[[float, float | None, str], Awaitable[None]],
    ) -> JsonDict:
        item: JsonDict = _target_fields(call)
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
            await self._audit(rc.tool.name, rc.call, "failed", calls=[call], detail=str(exc))
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
        await self._audit(
            rc.tool.name,
            rc.call,
            "succeeded" if item["ok"] else "failed",
            calls=[call],
            upid=item.get("upid"),
            detail=item.get("error"),
        )
        return item

    # ------------------------------------------------------------------ audit
    async def _audit(
        self,
        tool: str,
        ctx: CallContext,
        outcome: str,
        *,
        plan: Plan | None = None,
        calls: list[PlannedCall] | None = None,
        arguments: JsonDict | None = None,
        upid: str | None = None,
        detail: str | None = None,
        risk: str | None = None,
        via: str | None = None,
    ) -> None:
        """One ledger record (secrets redacted by the ledger). A write failure propagates: fail closed."""
        if self._ledger is None:
            return
        chosen = calls if calls is not None else (plan.calls if plan is not None else [])
        failed = outcome in ("failed", "denied")
        await self._ledger.append_async(
            outcome,
            tool=tool,
            caller=ctx.caller,
            risk=risk or (plan.risk if plan is not None else None),
            target=[c.label for c in chosen] or None,
            args=arguments,
            upid=upid,
            error=detail if failed else None,
            reason=detail if not failed else None,
            via=via,
            details={"requests": [c.describe() for c in chosen]} if chosen else None,
        )

    # ------------------------------------------------------------------ resources
    def resources(self) -> list[ResourceView]:
        return list_resources()

    async def read_resource(self, uri: str) -> str:
        return await read_resource(self, uri)


def _facts(guest: GuestRef) -> GuestFacts:
    from pvemcp.core.policy.scope import GuestFacts

    return GuestFacts(vmid=guest.vmid, node=guest.node, pool=guest.pool, tags=frozenset(guest.tags), name=guest.name)


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


def _line(tool: str, item: Mapping[str, Any]) -> str:
    who = str(item.get("vmid") or item.get("label") or "")
    if not item.get("ok"):
        return f"{tool} {who}: FAILED: {item.get('error')}".strip()
    if item.get("timed_out"):
        return f"{tool} {who}: still running ({item.get('upid')})".strip()
    state = item.get("exitstatus") or item.get("status") or "done"
    return f"{tool} {who}: {state}".strip()


def _error(text: str) -> ToolResult:
    return ToolResult({}, text, is_error=True)
