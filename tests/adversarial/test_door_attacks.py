"""Issue #10's attack classes, played by an agent through the official MCP client.

Every class runs on stdio (``pvemcp serve`` as a subprocess) and on streamable HTTP (served in
process), in both protocol eras. The witness is the simulator's request log: no request that the
attack was after (a stop, a delete, a job change, a node operation) reaches Proxmox. Where the attack
itself needs a harmless write (tagging a guest), that write is the only mutation in the log.

The policy of every session: ``guest_delete = "deny"``; scope VMIDs 100-199 tagged ``dev``
(seed 1: 105, 106, 109, 110 are in scope; 100-104, 107, 108 are not); a short elicitation deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from door.helpers import MODES, cluster_env, ledger, python, subprocess_env, text_of
from pvemcp.core.policy.risk import Risk, classify_operation
from pvemcp.door._core import App, load_app_config
from pvemcp.door.transports import HttpSettings, http_endpoint
from pvemcp.sim.runner import RunningSimulator

pytestmark = pytest.mark.anyio

TIMEOUT_S = 0.5
POLICY = f"""
[policy]
elicitation_timeout_s = {TIMEOUT_S}

[policy.rules]
guest_delete = "deny"

[policy.scope]
vmids = ["100-199"]
tags = ["dev"]
"""
OUTSIDE = 100  # prod;web on pve1
INSIDE = 106  # ci;dev, running, on pve1
FOREIGN_UPID = "UPID:pve1:00001234:00005678:6A000000:qmstart:100:root@pam:"

Answer = Callable[[str], Awaitable[types.ElicitResult]]


TRANSPORTS = [(t, m) for t in ("stdio", "http") for m in sorted(MODES)]


class Session:
    """One client session against a server with :data:`POLICY` (or ``policy``)."""

    def __init__(self, client: Client, app: App | None, audit: Path) -> None:
        self.client = client
        self.app = app  # in-process (HTTP) only: lets a test count plans
        self.audit = audit

    async def call(self, tool: str, args: dict[str, Any]) -> types.CallToolResult:
        return await self.client.call_tool(tool, args)

    async def refused(self, tool: str, args: dict[str, Any], reason: str) -> dict[str, Any]:
        """Call and insist on a refusal with this structured reason; return the refusal."""
        result = await self.call(tool, args)
        assert result.is_error, f"{tool}{args}: {text_of(result)}"
        structured = result.structured_content or {}
        assert structured.get("refused", {}).get("reason") == reason, f"{tool}{args}: {structured or text_of(result)}"
        assert "nothing was sent" in text_of(result).lower() or reason in ("scope",), text_of(result)
        refusal: dict[str, Any] = structured["refused"]
        return refusal


@asynccontextmanager
async def session(
    sim: RunningSimulator,
    tmp: Path,
    transport: str,
    mode: str,
    answer: Answer | None = None,
    policy: str = POLICY,
) -> AsyncIterator[Session]:
    config = tmp / f"pvemcp-{transport}-{mode}.toml"
    config.write_text(policy, encoding="utf-8")
    audit = tmp / f"audit-{transport}-{mode}.jsonl"
    callback = None
    if answer is not None:

        async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
            return await answer(getattr(params, "message", ""))

    extra = {"elicitation_callback": callback} if callback is not None else {}
    if transport == "stdio":
        env = subprocess_env(sim, PVEMCP_AUDIT_LOG=str(audit), PVEMCP_CONFIG=str(config))
        params = StdioServerParameters(command=python(), args=["-m", "pvemcp", "serve"], env=env)
        async with Client(params, mode=mode, **extra) as client:  # type: ignore[arg-type]
            yield Session(client, None, audit)
        return
    env = cluster_env(sim, PVEMCP_AUDIT_LOG=str(audit))
    app = App(load_app_config(config_path=config, env=env))
    async with (
        http_endpoint(app, HttpSettings(host="127.0.0.1", port=0)) as endpoint,
        httpx2.AsyncClient(timeout=httpx2.Timeout(30.0)) as http,
        Client(streamable_http_client(endpoint.url, http_client=http), mode=mode, **extra) as client,  # type: ignore[arg-type]
    ):
        yield Session(client, app, audit)


def sent(sim: RunningSimulator, start: int = 0) -> list[str]:
    """The mutating requests the simulator received since ``start`` (index into its log)."""
    return [f"{r.method} {r.path}" for r in sim.request_log[start:] if r.method != "GET"]


def job_selecting(sim: RunningSimulator, key: str) -> str:
    return next(job_id for job_id, job in sim.state.backup_jobs.items() if job.get(key))


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS)
async def test_attacks_with_the_token_fallback(
    sim: RunningSimulator, tmp_path: Path, transport: str, mode: str
) -> None:
    """A client that cannot elicit: classes 1-4 through previews and tokens."""
    async with session(sim, tmp_path, transport, mode) as s:
        # 1. A deny rule on a curated tool holds through the generic API, token or not.
        for args in (
            {"method": "DELETE", "path": f"/nodes/pve1/qemu/{INSIDE}"},
            {"method": "DELETE", "path": f"/nodes/pve1/qemu/{INSIDE}", "confirm_token": "A" * 46},
        ):
            refusal = await s.refused("api_call", args, "rule")
            assert "guest_delete" in refusal["message"]

        # 2. The question names the target (name, vmid, node, state) and what matters.
        preview = await s.call("api_call", {"method": "POST", "path": f"/nodes/pve1/qemu/{INSIDE}/status/stop"})
        question = (preview.structured_content or {})["confirmation"]["question"]
        assert all(part in question for part in (str(INSIDE), "ci-runner", "pve1", "running")), question
        job = await s.call(
            "backup_job_create",
            {"schedule": "sat 02:00", "vmid": "105,106", "storage": "nfs-shared", "prune-backups": "keep-last=3"},
        )
        question = (job.structured_content or {})["confirmation"]["question"]
        for part in ("sat 02:00", "nfs-shared", "105,106", "keep-last=3", "dev-box", "ci-runner"):
            assert part in question, question

        # 3. Scope reaches what a call touches indirectly.
        attacks: list[tuple[str, str, dict[str, Any]]] = [
            ("PUT", f"/cluster/backup/{job_selecting(sim, 'vmid')}", {"enabled": 0}),
            ("DELETE", f"/cluster/backup/{job_selecting(sim, 'all')}", {}),
            ("DELETE", "/nodes/pve1/storage/nfs-shared/prunebackups", {}),
            ("DELETE", f"/nodes/pve1/storage/local-lvm/content/local-lvm:vm-{OUTSIDE}-disk-0", {}),
            ("PUT", "/nodes/pve1/disks/wipedisk", {"disk": "/dev/sdb"}),
            ("POST", "/nodes/pve1/services/pveproxy/restart", {}),
            ("PUT", "/nodes/pve1/network", {}),
            ("POST", "/nodes/pve1/apt/update", {}),
            ("POST", "/nodes/pve1/certificates/custom", {"certificates": "-----BEGIN CERTIFICATE-----"}),
            ("POST", "/nodes/pve1/ceph/restart", {}),
            ("POST", "/nodes/pve1/stopall", {}),
        ]
        for method, path, args in attacks:
            refusal = await s.refused("api_call", {"method": method, "path": path, "args": args}, "scope")
            assert refusal.get("object"), refusal
        await s.refused("task_stop", {"upid": FOREIGN_UPID}, "scope")
        await s.refused("task_log", {"upid": FOREIGN_UPID}, "scope")
        await s.refused("api_get", {"path": f"/nodes/pve1/qemu/{OUTSIDE}/config"}, "scope")
        resources = await s.call("api_get", {"path": "/cluster/resources"})
        listed = {e.get("vmid") for e in (resources.structured_content or {})["data"] if e.get("vmid")}
        assert listed and listed <= {105, 106, 109, 110}, listed
        content = await s.call("storage_content", {"node": "pve1", "storage": "nfs-shared"})
        volids = [item["volid"] for item in (content.structured_content or {})["items"]]
        assert volids and not [v for v in volids if f"-{OUTSIDE}-" in v or f"-{101}-" in v], volids

        # 4. The token binds the plan: tagging another guest after the preview voids it.
        before = len(sim.request_log)
        preview = await s.call("guest_stop", {"tag": "ci"})
        confirmation = (preview.structured_content or {})["confirmation"]
        assert {t["id"] for t in confirmation["targets"] if t["kind"] == "guest"} == {"106", "109"}
        tagged = await s.call("guest_config_set", {"vmid": 105, "set": {"tags": "ci;dev"}})
        assert not tagged.is_error, text_of(tagged)
        token = confirmation["confirm_token"]
        refusal = await s.refused("guest_stop", {"tag": "ci", "confirm_token": token}, "plan_changed")
        assert "105" in refusal["message"]
        assert sent(sim, before) == ["PUT /nodes/pve3/qemu/105/config"], sent(sim, before)

    assert sent(sim) == ["PUT /nodes/pve3/qemu/105/config"]
    outcomes = {r["outcome"] for r in ledger(s.audit)}
    assert {"denied", "previewed", "plan_changed"} <= outcomes, outcomes
    assert all(r.get("call_id") for r in ledger(s.audit))


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS)
async def test_attacks_on_elicitation(sim: RunningSimulator, tmp_path: Path, transport: str, mode: str) -> None:
    """A client that elicits: the plan is bound across the question (class 4), the question has a
    deadline (class 7), and a confirmed call plans exactly twice."""
    questions: list[str] = []
    behaviour = ["retag"]

    async def answer(question: str) -> types.ElicitResult:
        questions.append(question)
        if behaviour[0] == "retag":  # someone else tags VM 105 while the user reads the question
            sim.state.guests[105].config["tags"] = "ci;dev"
            sim.state.touch()
        elif behaviour[0] == "slow":
            await anyio.sleep(TIMEOUT_S * 3)
        elif behaviour[0] == "decline":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with session(sim, tmp_path, transport, mode, answer) as s:
        refusal = await s.refused("guest_stop", {"tag": "ci"}, "plan_changed")
        assert "105" in refusal["message"]
        assert "106" in questions[0] and "109" in questions[0] and "105" not in questions[0]
        assert sent(sim) == []

        behaviour[0] = "slow"
        await s.refused("guest_stop", {"vmid": INSIDE}, "expired")
        assert sent(sim) == []

        behaviour[0] = "decline"
        await s.refused("guest_stop", {"vmid": INSIDE}, "declined")

        behaviour[0] = "accept"
        plans = s.app.plans_built if s.app is not None else 0
        done = await s.call("guest_stop", {"vmid": INSIDE})
        assert not done.is_error, text_of(done)
        if s.app is not None:
            assert s.app.plans_built - plans == 2  # once before the question, once before sending
        assert sent(sim) == [f"POST /nodes/pve1/qemu/{INSIDE}/status/stop"]

    records = ledger(s.audit)
    assert [r["outcome"] for r in records if r["outcome"] in ("plan_changed", "expired")] == [
        "plan_changed",
        "expired",
    ]
    stop = [r for r in records if r.get("plan_digest") and r["outcome"] in ("pending", "confirmed", "succeeded")]
    assert len({r["call_id"] for r in stop[-3:]}) == 1 and len({r["plan_digest"] for r in stop[-3:]}) == 1, stop


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS)
async def test_read_only_lists_no_mutating_tool(
    sim: RunningSimulator, tmp_path: Path, transport: str, mode: str
) -> None:
    """Class 5: read-only lists only read tools (the generic read tool among them) and refuses the rest."""
    async with session(sim, tmp_path, transport, mode, policy="[policy]\nread_only = true\n") as s:
        tools = (await s.client.list_tools()).tools
        names = {t.name for t in tools}
        assert "api_get" in names and "api_call" not in names and "guest_stop" not in names
        assert all(t.annotations is not None and t.annotations.read_only_hint for t in tools)
        for tool, args in (
            ("api_call", {"method": "DELETE", "path": f"/nodes/pve1/qemu/{INSIDE}"}),
            ("guest_stop", {"vmid": INSIDE}),
        ):
            await s.refused(tool, args, "read_only")
        with pytest.raises(MCPError, match="Unknown tool"):
            await s.call("no_such_tool", {})
        read = await s.call("api_get", {"path": f"/nodes/pve1/qemu/{INSIDE}/status/current"})
        assert not read.is_error and (read.structured_content or {})["data"]["status"] == "running"
    assert sent(sim) == []


async def test_annotations_follow_the_classifier_on_the_wire(sim: RunningSimulator, tmp_path: Path) -> None:
    """Class 5: no listed tool says destructiveHint false where the enforcing classifier says it may be."""
    async with session(sim, tmp_path, "http", "auto", policy="") as s:
        wire = {t.name: t.annotations for t in (await s.client.list_tools()).tools}
        assert s.app is not None
        for tool in s.app.tools():
            worst = {classify_operation(*op.split(" ", 1)) for op in tool.operations.values()}
            if tool.risk == "destructive" or Risk.DESTRUCTIVE in worst:
                hints = wire[tool.name]
                assert hints is not None and hints.destructive_hint, tool.name
        assert wire["api_get"] is not None and wire["api_get"].read_only_hint
        assert wire["api_call"] is not None and wire["api_call"].destructive_hint


async def test_a_2026_question_nobody_answers_is_audited_as_expired(sim: RunningSimulator, tmp_path: Path) -> None:
    """Class 7 in the stateless era: a client that never retries leaves an *expired* record, once."""
    from pvemcp.door import confirm
    from pvemcp.door.server import Door

    audit = tmp_path / "audit.jsonl"
    app = App(load_app_config(config_path=None, env=cluster_env(sim, PVEMCP_AUDIT_LOG=str(audit))))
    async with app:
        door = Door(app, caller="agent")
        door.pending = confirm.PendingQuestions(ttl_s=-1)  # every question is already past its deadline
        state = door.pending.mint(
            tool="guest_stop",
            wire_arguments={"vmid": INSIDE},
            caller="agent",
            question="Stop?",
            confirm_tool="guest_stop",
            confirm_arguments={"vmid": INSIDE},
            plan_digest="d" * 64,
            call_id="c-1",
        )
        await door._record_overdue()
        await door._record_overdue()  # reported once only
        with pytest.raises(confirm.QuestionExpired) as late:
            door.pending.take(state, tool="guest_stop", wire_arguments={"vmid": INSIDE}, caller="agent")
        assert late.value.recorded
    records = ledger(audit)
    assert [(r["outcome"], r["call_id"], r["plan_digest"]) for r in records] == [("expired", "c-1", "d" * 64)]
    assert sent(sim) == []
