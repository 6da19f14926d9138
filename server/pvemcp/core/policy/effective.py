"""The effective policy: what this server will and will not do, as one description.

The operator wrote a config file and some environment variables; the model sees a list of tools.
Neither says, by itself, what is in force: which tools exist but are hidden and by what (a toolset
left out, read-only, a deny rule), which calls need confirmation and how it is asked, what the scope
is, where the audit ledger is. :func:`describe_policy` says all of it, from the same objects the
server decides with; ``pvemcp check`` prints it and the ``pve://policy`` resource returns it, so a
missing tool never looks like a tool that was never written.

:func:`preflight` is the start-up half of the same job: the names the policy uses must exist (rules,
toolsets) and the ledger must open, before a server starts serving or a call runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pvemcp.core.policy.config import (
    Action,
    PolicyConfig,
    PolicyConfigError,
    check_rule_names,
    did_you_mean,
)
from pvemcp.core.policy.ledger import AuditLedger, default_head_path, open_problem
from pvemcp.core.policy.risk_class import Risk

if TYPE_CHECKING:
    from pvemcp.core.app import App
    from pvemcp.core.policy.scope import Scope

__all__ = ["POLICY_URI", "audit_status", "check_names", "describe_policy", "preflight", "pve_versions"]

POLICY_URI = "pve://policy"


def check_names(app: App) -> None:
    """Every toolset and rule the policy names exists (rules: risk class, catalog tool, API operation).

    Raises :class:`PolicyConfigError` naming the key and the nearest valid name.
    """
    policy, catalog = app.config.policy, app.catalog
    for name in policy.toolsets or ():
        if name not in catalog.toolsets:
            raise PolicyConfigError(
                "policy.toolsets",
                f"unknown toolset {name}{did_you_mean(name, catalog.toolsets)}; known: {', '.join(catalog.toolsets)}",
            )
    check_rule_names(policy, catalog.tools, lambda: frozenset(app.spec.keys()))


def preflight(app: App, *, open_ledger: bool = True) -> None:
    """What must hold before serving or calling: known names, a listable catalog, a ledger that opens.

    Opening the ledger creates its directory and key on a fresh host (as the first call would); any
    problem is a ``ValueError`` whose message says what to do.
    """
    check_names(app)
    app.tools()
    from pvemcp.core.state import check_state_config

    check_state_config(app.config.policy)  # replicas: the shared keys load (the database is reached at start)
    if open_ledger:
        ledger = AuditLedger.from_config(app.config.policy)
        if ledger is not None:
            ledger.close()


def audit_status(policy: PolicyConfig) -> dict[str, Any]:
    """Where the ledger is and whether it would open (without creating anything)."""
    if policy.audit_log is None:
        return {"log": None, "ok": True, "detail": "off: no audit log configured (set audit_log / PVEMCP_AUDIT_LOG)"}
    problem = open_problem(policy.audit_log, policy.audit_key_path)
    return {
        "log": str(policy.audit_log),
        "key_file": str(policy.audit_key_path),
        "head_file": str(default_head_path(policy.audit_log)),
        "ok": problem is None,
        "detail": problem or ("writable" if policy.audit_log.parent.is_dir() else "its directory will be created"),
    }


def _scope(scope: Scope) -> dict[str, Any]:
    if scope.unrestricted:
        return {"unrestricted": True}
    out: dict[str, Any] = {"unrestricted": False, "summary": scope.describe()}
    if scope.nodes is not None:
        out["nodes"] = sorted(scope.nodes)
    if scope.vmid_ranges is not None:
        out["vmids"] = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in scope.vmid_ranges]
    if scope.pools is not None:
        out["pools"] = sorted(scope.pools)
    if scope.tags is not None:
        out["tags"] = sorted(scope.tags)
    return out


def _hidden(app: App, listed: set[str]) -> dict[str, str]:
    """Every catalog tool that is not listed, with what hides it (the same tests the listing applies)."""
    policy, catalog = app.config.policy, app.catalog
    chosen = catalog.default_toolsets if policy.toolsets is None else policy.toolsets
    hidden: dict[str, str] = {}
    for tool in catalog.tools.values():
        if tool.name in listed:
            continue
        if tool.toolset not in chosen:
            origin = "the default toolsets" if policy.toolsets is None else "policy.toolsets"
            hidden[tool.name] = f"toolset {tool.toolset} is not enabled ({origin}: {', '.join(chosen)})"
        elif policy.read_only and tool.listing_risk is not Risk.READ:
            hidden[tool.name] = f"read_only: {tool.listing_risk} tools are hidden and refused"
        else:
            decision = app.listing_decision(tool)
            hidden[tool.name] = decision.reason if decision.denied else "hidden by policy"
    return hidden


def _confirmation(policy: PolicyConfig, settings: Mapping[str, Any]) -> dict[str, Any]:
    asks = sorted(k for k, v in policy.rules.items() if v is Action.CONFIRM)
    fallback = (
        f"a preview with a single-use confirm_token, valid {int(policy.confirm_ttl_s)} s"
        if policy.confirm_fallback == "token"
        else "refused (confirm_fallback = deny)"
    )
    out: dict[str, Any] = {
        "required_for": asks,
        "method": f"MCP elicitation when the client supports it; otherwise {fallback}",
        "fallback": policy.confirm_fallback,
        "token_ttl_s": policy.confirm_ttl_s,
    }
    if settings.get("elicitation_timeout_s") is not None:
        out["elicitation_timeout_s"] = settings["elicitation_timeout_s"]
    return out


def describe_policy(app: App, versions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The effective policy of ``app`` as plain JSON (see module docstring); ``versions`` per cluster if known."""
    policy, catalog = app.config.policy, app.catalog
    listed = [t.name for t in app.tools()]
    settings = policy.settings()
    out: dict[str, Any] = {
        "read_only": policy.read_only,
        "toolsets": {
            "enabled": list(catalog.default_toolsets if policy.toolsets is None else policy.toolsets),
            "available": list(catalog.toolsets),
        },
        "tools": {"listed": listed, "hidden": _hidden(app, set(listed))},
        "rules": {k: v.value for k, v in policy.rules.items()},
        "scope": _scope(policy.scope),
        "confirmation": _confirmation(policy, settings),
        "audit": audit_status(policy),
        "settings": settings,
    }
    if versions is not None:
        out["pve"] = dict(versions)
    return out


async def pve_versions(app: App) -> dict[str, Any]:
    """``GET /version`` of every configured cluster: the version, or why it could not be read."""
    import anyio

    from pvemcp.core.pve.errors import PveError

    out: dict[str, Any] = {}
    for name, cluster in app.config.clusters.items():
        try:
            with anyio.fail_after(cluster.connect_timeout_s + cluster.read_timeout_s):
                data = await (await app.client(name)).get("/version")
        except (PveError, OSError, TimeoutError) as exc:
            out[name] = {"reachable": False, "error": str(exc) or type(exc).__name__}
            continue
        version = data.get("version") if isinstance(data, Mapping) else None
        release = data.get("release") if isinstance(data, Mapping) else None
        out[name] = {"reachable": True, "version": version, "release": release}
    return out
