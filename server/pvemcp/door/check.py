"""``pvemcp check``: can this configuration work, and if not, exactly which step fails?

The steps are ordered so that the first failure names the fix: TCP reachability, then TLS (pinned
fingerprint or CA), then authentication, then ``GET /version``, then ``GET /access/permissions``
matched against every listed tool's Proxmox permission rule (from openapi.json) so the operator sees
which tools the token may use before an assistant discovers it one 403 at a time. The privilege
match is an estimate (PVE evaluates pools, tokens' privilege separation and propagation itself);
it is a report, never an enforcement point.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio

from pvemcp.door._core import (
    DEFAULT_PORT,
    LEVEL_NAMES,
    NO,
    PARTLY,
    YES,
    App,
    AppConfig,
    ClientConfig,
    PveClient,
    PveError,
    ToolDef,
    permission_level,
)

__all__ = ["NO", "PARTLY", "YES", "Step", "check_cluster", "level_name", "permission_level", "run_check"]


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


def _out(line: str) -> None:
    print(line, flush=True)


async def run_check(config: AppConfig, app: App) -> int:
    """Check every configured cluster; exit 0 only when all of them pass."""
    policy_ok = report_policy(app)  # the effective policy first; an unusable audit log fails the check
    failed = 0
    tools = app.tools()
    for name, cluster in config.clusters.items():
        _out(f"cluster {name}: {cluster.url} as {cluster.identity}")
        steps = await check_cluster(cluster, tools, app.spec.version)
        for step in steps:
            _out(f"  {'ok  ' if step.ok else 'FAIL'} {step.name:<11} {step.detail}")
        if not all(s.ok for s in steps):
            failed += 1
    if failed:
        print(f"pvemcp check: {failed} cluster(s) failed", file=sys.stderr)
    return 1 if failed or not policy_ok else 0


async def check_cluster(cluster: ClientConfig, tools: Sequence[ToolDef], spec_version: str | None = None) -> list[Step]:
    parts = urlsplit(cluster.url)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORT
    steps: list[Step] = []
    try:
        with anyio.fail_after(cluster.connect_timeout_s):
            stream = await anyio.connect_tcp(host, port)
        await stream.aclose()
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        steps.append(Step("reachable", False, f"{cluster.host_port}: {reason} — check the URL, firewall, pveproxy"))
        return steps
    steps.append(Step("reachable", True, f"{cluster.host_port} accepts TCP connections"))

    async with PveClient(cluster) as pve:
        try:
            version = await pve.get("/version")
        except PveError as exc:
            if exc.kind in ("tls", "connection", "timeout"):
                steps.append(Step("tls", False, str(exc)))
                return steps
            steps.append(Step("tls", True, _tls_detail(cluster)))
            if exc.kind == "auth" or exc.status in (401, 403):
                steps.append(Step("auth", False, str(exc)))
            else:
                steps.append(Step("version", False, str(exc)))
            return steps
        steps.append(Step("tls", True, _tls_detail(cluster)))
        steps.append(Step("auth", True, f"{cluster.auth_mode} {cluster.identity} accepted"))
        if isinstance(version, Mapping):
            text = f"Proxmox VE {version.get('version', '?')} (release {version.get('release', '?')})"
        else:
            text = f"unexpected /version answer: {str(version)[:80]}"
        steps.append(Step("version", isinstance(version, Mapping), text))
        if isinstance(version, Mapping) and spec_version is not None:
            cluster_version = str(version.get("version", "?"))
            step = schema_step(cluster_version, spec_version)
            if not release_matches(cluster_version, spec_version):
                step.detail += await _schema_difference(cluster, tools)
            steps.append(step)
        try:
            granted = await pve.get("/access/permissions")
        except PveError as exc:
            steps.append(Step("privileges", False, str(exc)))
            return steps
    steps.append(_privilege_step(granted if isinstance(granted, Mapping) else {}, tools, cluster.identity))
    return steps


def _tls_detail(cluster: ClientConfig) -> str:
    if cluster.fingerprint:
        return f"certificate matches the pinned fingerprint {cluster.fingerprint[:17]}…"
    if cluster.insecure:
        return "NOT VERIFIED (insecure=true) — pin the fingerprint instead"
    if cluster.ca_file:
        return f"certificate verified against {cluster.ca_file}"
    return "certificate verified against the system trust store"


def _privilege_step(granted: Mapping[str, Any], tools: Sequence[ToolDef], identity: str) -> Step:
    """Which tools this token may run, from each operation's gate (see ``pvemcp.core.pve.privileges``)."""
    from pvemcp.dialect.model import load_spec

    spec = load_spec()
    privs: dict[str, set[str]] = {
        str(path): {p for p, v in (entry or {}).items() if v is not None} for path, entry in granted.items()
    }
    allowed: list[str] = []
    partly: list[str] = []
    denied: list[str] = []
    for tool in tools:
        ops = [op for op in tool.operations.values() if op]
        if not ops:
            allowed.append(tool.name)  # the generic API tools: each call is checked by Proxmox itself
            continue
        levels = []
        for key in ops:
            try:
                rule = spec.operation(key).permissions
            except KeyError:
                continue
            levels.append(permission_level(rule, privs, identity))
        level = max(levels) if levels else YES
        {YES: allowed, PARTLY: partly, NO: denied}[level].append(tool.name)
    detail = f"{len(allowed)} of {len(tools)} tools allowed"
    if partly or denied:
        detail += f": {', '.join(allowed)}"
    if partly:
        detail += f"; only on some paths: {', '.join(partly)}"
    if denied:
        detail += f"; not allowed: {', '.join(denied)} (`pvemcp token-recipe` prints the privileges they need)"
    return Step("privileges", bool(allowed), detail)


async def _schema_difference(cluster: ClientConfig, tools: Sequence[ToolDef]) -> str:
    """What the node's own schema (its api-viewer apidoc.js) changes for the listed tools, as a sentence."""
    from pvemcp.dialect.model import Spec, load_spec
    from pvemcp.door._core import PullError, build_spec_document, compare, fetch_apidoc_js, parse_apidoc_js

    try:
        tree = parse_apidoc_js(await fetch_apidoc_js(cluster))
        theirs = Spec(build_spec_document(tree, "cluster"))
    except PullError as exc:
        return f" (its schema could not be read: {exc})"
    diff = compare(theirs, load_spec())
    used = {key: tool.name for tool in tools for key in tool.operations.values() if key}
    touched = sorted({used[k] for k in [*diff.only_bundled, *diff.changed_parameters] if k in used})
    text = (
        f"; its schema has {len(diff.only_cluster)} operation(s) pvemcp's lacks, lacks {len(diff.only_bundled)}, "
        f"and {len(diff.changed_parameters)} take other parameters"
    )
    return text + (f"; tools affected: {', '.join(touched)}" if touched else "; no tool is affected")


def release_matches(cluster_version: str, schema_version: str) -> bool:
    """A schema for "9.1" describes every 9.1.x; a pulled one names the exact version."""
    return schema_version in (cluster_version, ".".join(cluster_version.split(".")[:2]))


def schema_step(cluster_version: str, schema_version: str) -> Step:
    """Does the schema pvemcp derives its tools from describe the cluster's PVE release?"""
    import os

    from pvemcp.door._core import SPEC_ENV

    if release_matches(cluster_version, schema_version):
        pulled = " (pulled from the cluster)" if os.environ.get(SPEC_ENV) else ""
        return Step("schema", True, f"pvemcp's API schema is for PVE {schema_version}{pulled}, as the cluster")
    return Step(
        "schema",
        True,  # a difference is a warning: most operations are the same across releases
        f"the cluster runs PVE {cluster_version}, pvemcp's API schema is for {schema_version}: parameters may "
        "differ — `pvemcp spec pull` fetches the cluster's own schema and lists the differences",
    )


_LEVEL_NAME: dict[int, str] = LEVEL_NAMES


def level_name(level: int) -> str:
    return _LEVEL_NAME[level]


def report_policy(app: App) -> bool:
    """Print the effective policy (the same description as the ``pve://policy`` resource); False if the
    audit log could not be opened."""
    from pvemcp.door._core import describe_policy

    policy = describe_policy(app)
    tools, confirm, audit = policy["tools"], policy["confirmation"], policy["audit"]
    by_reason: dict[str, list[str]] = {}
    for name, why in tools["hidden"].items():
        by_reason.setdefault(why, []).append(name)
    hidden = "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
    _out("policy (also readable by the model as pve://policy):")
    _out(f"       {'read-only':<11} {'yes: every call that is not a read is refused' if policy['read_only'] else 'no'}")
    _out(f"       {'toolsets':<11} {', '.join(policy['toolsets']['enabled'])}")
    _out(f"       {'tools':<11} {len(tools['listed'])} listed" + (f"; hidden: {hidden}" if hidden else ""))
    _out(f"       {'rules':<11} {', '.join(f'{k} = {v}' for k, v in policy['rules'].items())}")
    _out(f"       {'scope':<11} {policy['scope'].get('summary', 'unrestricted')}")
    _out(f"       {'confirm':<11} {', '.join(confirm['required_for']) or 'nothing'}: {confirm['method']}")
    _out(f"  {'ok  ' if audit['ok'] else 'FAIL'} {'audit log':<11} {audit['log'] or ''} {audit['detail']}".rstrip())
    if not audit["ok"]:
        print("pvemcp check: the audit log cannot be opened; serve and call would refuse to start", file=sys.stderr)
    return bool(audit["ok"])
