"""A scripted agent on twelve everyday operator requests: calls and characters read, this tree vs a previous one.

    python bench/bench_agent.py                 # this tree vs the base ref (default: main before issue #11)
    python bench/bench_agent.py --base <ref>    # any git ref; it is checked out into a temporary worktree

Each request is performed by a scripted client through the official MCP client, over stdio, against a
fresh simulator (same seed for both trees). The agent is adaptive the way a model is: it acts on the
facts a result gives and makes the extra call it needs only when a fact is missing (the new guest's
state, the archive volid, the job id, a vmid for a name, storage usage per node...). An error is
followed the way its text says (a stale digest error that says "check its state" costs that call).
Every request is then verified against the simulator's state; an unverified request is reported.

What is counted, per request and in total, for each tree:
- calls: tool calls the agent made;
- text: characters of the text content blocks (what Claude Desktop / claude.ai show the model),
  with the share of structured leaf values the text carries ("facts in text");
- structured: characters of the compact JSON of structuredContent (what Claude Code / VS Code show);
- read (text-only host): the text when it carries the facts (>= 95 % of the leaves), else the
  structured JSON: a text-only host that must answer from facts the text lacks needs them serialized
  (what the MCP spec recommends) -- the text alone would leave the model blind, not cheaper;
- tools/list: model-visible characters (name, description, inputSchema), and the instructions.

Proximo (the strongest peer, bench/peers.py) needs Python >= 3.12 and a request set of its own; it is
not run here. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.render import leaf_text, leaves
from pvemcp.sim import running_simulator
from pvemcp.sim.runner import RunningSimulator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "ec7dc8d"  # main when issue #11 (results every host can read) was started
FACTS_THRESHOLD = 0.95
TARGET_FEWER = 0.30


class NotVerified(AssertionError):
    """The request was not done as asked, by the simulator's state."""


@dataclass
class Reply:
    structured: dict[str, Any]
    text: str
    is_error: bool


@dataclass
class Tally:
    calls: int = 0
    text: int = 0
    structured: int = 0
    read: int = 0
    leaves: int = 0
    leaves_in_text: int = 0

    def add(self, other: Tally) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Agent:
    """Calls tools as a model would and counts what it reads."""

    client: Client
    schemas: dict[str, dict[str, Any]]
    read_only: set[str]
    tally: Tally = field(default_factory=Tally)
    facts: dict[str, list[int]] = field(default_factory=dict)  # read tool -> [leaves, leaves in text]

    async def call(self, name: str, args: dict[str, Any]) -> Reply:
        result: types.CallToolResult = await self.client.call_tool(name, args)
        text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
        structured = dict(result.structured_content or {})
        as_json = json.dumps(structured, separators=(",", ":"), ensure_ascii=False) if structured else text
        facts = leaves(structured)
        carried = sum(1 for leaf in facts if leaf_text(leaf) in text)
        t = self.tally
        t.calls += 1
        t.text += len(text)
        t.structured += len(as_json)
        t.leaves += len(facts)
        t.leaves_in_text += carried
        t.read += len(text) if not facts or carried / len(facts) >= FACTS_THRESHOLD else len(as_json)
        if name in self.read_only:
            seen = self.facts.setdefault(name, [0, 0])
            seen[0] += len(facts)
            seen[1] += carried
        return Reply(structured, text, bool(result.is_error))

    def offers(self, tool: str, param: str) -> bool:
        return param in self.schemas.get(tool, {}).get("properties", {})

    async def guest_id(self, name: str) -> int:
        """The vmid of a guest named ``name`` (a list call: only when the tool cannot take the name)."""
        rows = (await self.call("guest_list", {"name": name})).structured["items"]
        if len(rows) != 1:
            raise NotVerified(f"{len(rows)} guests named {name}")
        return int(rows[0]["vmid"])

    async def address(self, tool: str, name: str) -> dict[str, Any]:
        """How to address a guest by name: directly when the tool takes a name, else by looking up its vmid."""
        if self.offers(tool, "name") and not _name_is_payload(tool):
            return {"name": name}
        return {"vmid": await self.guest_id(name)}


def _name_is_payload(tool: str) -> bool:
    return tool in ("guest_clone", "vm_create")


def _items(reply: Reply) -> list[dict[str, Any]]:
    return list(reply.structured.get("results") or ([reply.structured["data"]] if "data" in reply.structured else []))


def check(condition: bool, what: str) -> None:
    if not condition:
        raise NotVerified(what)


# ---------------------------------------------------------------------------------------------- requests
Run = Callable[[Agent, RunningSimulator], Awaitable[None]]


async def inventory(agent: Agent, sim: RunningSimulator) -> None:
    """Which guests run where, with their CPU and memory?"""
    rows = (await agent.call("guest_list", {})).structured["items"]
    if not any("mem_gib" in r or "mem" in r for r in rows):  # the default row lacks memory: ask for all
        rows = (await agent.call("guest_list", {"full": True})).structured["items"]
    for vmid, guest in sim.state.guests.items():
        row = next((r for r in rows if r["vmid"] == vmid), None)
        check(row is not None and row["node"] == guest.node, f"guest {vmid} missing or misplaced")


async def start_stopped(agent: Agent, sim: RunningSimulator) -> None:
    """Start the stopped VMs."""
    rows = (await agent.call("guest_list", {"status": "stopped", "type": "qemu"})).structured["items"]
    vmids = [r["vmid"] for r in rows if not r.get("template")]
    items = _items(await agent.call("guest_start", {"vmids": vmids}))
    if not all("guest_status" in i for i in items):  # the task's status is not the guest's: look
        await agent.call("guest_list", {"status": "running", "type": "qemu"})
    check(all(sim.state.guests[v].status == "running" for v in vmids), "a stopped VM is not running")


async def container_on_least_loaded(agent: Agent, sim: RunningSimulator) -> None:
    """Create a container on the least-loaded node."""
    nodes = (await agent.call("cluster_status", {})).structured["data"]["nodes"]
    node = min(nodes, key=lambda n: n.get("cpu_pct", n.get("cpu", 1)))["name"]
    templates = await agent.call("storage_content", {"node": node, "storage": "local", "content": "vztmpl"})
    ostemplate = templates.structured["items"][0]["volid"]
    args = {"node": node, "ostemplate": ostemplate, "hostname": "bench-ct", "rootfs": "local-lvm:4", "memory": 512}
    item = _items(await agent.call("ct_create", args))[0]
    vmid = int(item.get("new_vmid") or item["vmid"])
    if "guest_status" not in item:
        await agent.call("guest_status", {"vmid": vmid})
    guest = sim.state.guests.get(vmid)
    check(guest is not None and guest.node == node and guest.name == "bench-ct", "container not created there")


async def snapshot_change_rollback(agent: Agent, sim: RunningSimulator) -> None:
    """Snapshot web-01, give it two more cores, then roll back."""
    who = await agent.address("guest_config", "web-01")
    config = (await agent.call("guest_config", who)).structured["data"]
    cores = int(config.get("cores", 1))
    snap = _items(await agent.call("snapshot_create", {**who, "snapname": "before-cores"}))[0]
    change = {**who, "set": {"cores": cores + 2}, "digest": snap.get("digest") or config["digest"]}
    reply = await agent.call("guest_config_set", change)
    if reply.is_error or not _items(reply)[0].get("ok"):
        error = reply.text
        if "guest_config" not in error:  # the error pointed at the guest's state: the agent looks there first
            await agent.call("guest_status", who)
        fresh = (await agent.call("guest_config", who)).structured["data"]
        reply = await agent.call("guest_config_set", {**change, "digest": fresh["digest"]})
    vmid = next(v for v, g in sim.state.guests.items() if g.name == "web-01")
    guest = sim.state.guests[vmid]
    # web-01 runs: PVE keeps a cores change pending until the next restart (vmconfig_hotplug_pending)
    changed = getattr(guest, "pending", {}).get("cores", guest.config["cores"])
    check(str(changed) == str(cores + 2), "cores not changed")
    await agent.call("snapshot_rollback", {**who, "snapname": "before-cores"})
    after = (await agent.call("guest_config", who)).structured["data"]
    rolled = sim.state.guests[vmid]
    check(
        int(after["cores"]) == cores == int(rolled.config["cores"]) and "cores" not in getattr(rolled, "pending", {}),
        "not rolled back",
    )


async def clone_template(agent: Agent, sim: RunningSimulator) -> None:
    """Clone the Debian template as web-03."""
    rows = (await agent.call("guest_list", {"template": True})).structured["items"]
    template = rows[0]["vmid"]
    item = _items(await agent.call("guest_clone", {"vmid": template, "name": "web-03"}))[0]
    vmid = int(item.get("new_vmid") or item["newid"])
    if "guest_status" not in item:
        await agent.call("guest_status", {"vmid": vmid})
    check(sim.state.guests[vmid].name == "web-03", "clone not named web-03")


async def backup_now(agent: Agent, sim: RunningSimulator) -> None:
    """Back up db-01 now and tell me the archive."""
    who = await agent.address("backup_now", "db-01")
    if "vmid" in who and agent.schemas["backup_now"]["properties"]["vmid"].get("type") == "string":
        who = {"vmid": str(who["vmid"])}
    item = _items(await agent.call("backup_now", {**who, "storage": "local"}))[0]
    vmid = next(v for v, g in sim.state.guests.items() if g.name == "db-01")
    volids = item.get("volids")
    if not volids:
        node = sim.state.guests[vmid].node if "node" not in item else item["node"]
        content = {"node": node, "storage": "local", "content": "backup", "vmid": vmid}
        listed = (await agent.call("storage_content", content)).structured["items"]
        volids = [max(listed, key=lambda v: v.get("ctime", 0))["volid"]]
    archives = {v.volid for v in sim.state.volumes.values() if v.vmid == vmid and v.content == "backup"}
    check(volids[0] in archives, "archive not found")


async def failed_tasks(agent: Agent, sim: RunningSimulator) -> None:
    """Which tasks failed recently, and why?"""
    tasks = (await agent.call("task_list", {"errors": True})).structured["items"]
    check(bool(tasks), "no failed task listed")
    log = (await agent.call("task_log", {"upid": tasks[0]["upid"]})).structured["items"]
    check(any("ERROR" in line for line in log), "the failure's log line not read")


async def backup_job(agent: Agent, sim: RunningSimulator) -> None:
    """Back up web-01 and web-02 every Saturday at 02:00, keep the last 4."""
    rows = (await agent.call("guest_list", {"name": "web-0[12]"})).structured["items"]
    vmids = ",".join(str(r["vmid"]) for r in rows)
    args = {"schedule": "sat 02:00", "vmid": vmids, "storage": "local", "prune-backups": "keep-last=4"}
    item = _items(await agent.call("backup_job_create", args))[0]
    job = item.get("job_id")
    if not job:  # the id is not in the result: find the job just made
        jobs = (await agent.call("backup_jobs", {})).structured["items"]
        job = next(j["id"] for j in jobs if j.get("vmid") == vmids and j.get("schedule") == "sat 02:00")
    check(sim.state.backup_jobs.get(job, {}).get("vmid") == vmids, "job not created")


async def shutdown_by_tag(agent: Agent, sim: RunningSimulator) -> None:
    """Shut down everything tagged dev."""
    items = _items(await agent.call("guest_shutdown", {"tag": "dev", "forceStop": True}))
    if not all("guest_status" in i for i in items):
        await agent.call("guest_list", {"tag": "dev"})
    dev = [g for g in sim.state.guests.values() if "dev" in str(g.config.get("tags", "")) and not g.template]
    check(bool(dev) and all(g.status == "stopped" for g in dev), "a dev guest still runs")


async def delete_clone(agent: Agent, sim: RunningSimulator) -> None:
    """Delete web-03."""
    who = await agent.address("guest_delete", "web-03")
    await agent.call("guest_delete", {**who, "purge": True})
    check(not any(g.name == "web-03" for g in sim.state.guests.values()), "web-03 still exists")


async def health(agent: Agent, sim: RunningSimulator) -> None:
    """Is the cluster healthy? Quorum, nodes, and any storage filling up."""
    data = (await agent.call("cluster_status", {})).structured["data"]
    check(bool(data["cluster"]["quorate"]), "quorum not read")
    if "storages_full" in data:
        return
    rows = (await agent.call("storage_list", {})).structured["items"]
    if not any("used_pct" in r or "used" in r for r in rows):  # no usage cluster-wide: one call per node
        for node in data["nodes"]:
            await agent.call("storage_list", {"node": node["name"]})


async def outside_the_catalog(agent: Agent, sim: RunningSimulator) -> None:
    """Which resource pools exist? (no curated tool)"""
    await agent.call("api_search", {"query": "list pools"})
    try:
        reply = await agent.call("api_get", {"path": "/pools"})
        pools = {p["poolid"] for p in reply.structured["data"]}
    except MCPError:  # a tree from before the generic API was split into api_get and api_call
        reply = await agent.call("api_call", {"method": "GET", "path": "/pools"})
        pools = {p["poolid"] for p in _items(reply)[0]["result"]}
    check(pools == set(sim.state.pools), "pools differ")


REQUESTS: list[tuple[str, Run]] = [
    ("inventory", inventory),
    ("start the stopped VMs", start_stopped),
    ("CT on least-loaded node", container_on_least_loaded),
    ("snapshot/change/rollback", snapshot_change_rollback),
    ("clone", clone_template),
    ("back up now", backup_now),
    ("failed tasks + log", failed_tasks),
    ("backup job", backup_job),
    ("shut down by tag", shutdown_by_tag),
    ("delete by name", delete_clone),
    ("health check", health),
    ("outside the catalog", outside_the_catalog),
]


# ---------------------------------------------------------------------------------------------- running
@dataclass
class TreeRun:
    label: str
    per_request: list[tuple[str, Tally, str]]  # name, tally, "ok" or why not verified
    tools_list: int
    instructions: int
    facts: dict[str, list[int]]  # read tool -> [structured leaves, of them in the text], over every call

    @property
    def total(self) -> Tally:
        out = Tally()
        for _, tally, _ in self.per_request:
            out.add(tally)
        return out


async def _fail_a_backup(sim: RunningSimulator) -> None:
    """Leave one failed task in the history (a backup of a locked guest), as a real cluster has."""
    guest = next(g for g in sim.state.guests.values() if g.status == "stopped" and not g.template)
    guest.config["lock"] = "migrate"
    config = ClientConfig(
        url=sim.url.removesuffix("/api2/json"),
        token_id=sim.token_id,
        token_secret=sim.token_secret,
        fingerprint=sim.fingerprint,
    )
    async with PveClient(config) as client:
        upid = await client.post(
            "/nodes/{node}/vzdump", path={"node": guest.node}, data={"vmid": str(guest.vmid), "storage": "local"}
        )
        await client.wait_task(str(upid), deadline_s=60)
    del guest.config["lock"]


@asynccontextmanager
async def _server(tree: Path, sim: RunningSimulator) -> AsyncIterator[Client]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(tree / "server"),
        "PROXMOX_URL": sim.url,
        "PROXMOX_TOKEN_ID": sim.token_id,
        "PROXMOX_TOKEN_SECRET": sim.token_secret,
        "PROXMOX_FINGERPRINT": sim.fingerprint,
        "PVEMCP_TOOLS": str(tree / "tools.yaml"),
        "PVEMCP_SPEC": str(tree / "openapi.json"),
        "HOME": tempfile.gettempdir(),
        "XDG_CACHE_HOME": str(Path(tempfile.gettempdir()) / f"bench-agent-cache-{tree.name}"),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "pvemcp", "serve"], env=env, cwd=str(tree))
    with open(Path(tempfile.gettempdir()) / "bench_agent_server.log", "a", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), elicitation_callback=_accept) as client:
            yield client


async def _accept(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    """The user agrees to every confirmation (the scripted operator asked for these actions)."""
    return types.ElicitResult(action="accept", content={"confirm": True})


async def run_tree(label: str, tree: Path) -> TreeRun:
    async with running_simulator(seed=1, task_speed=50.0) as sim:
        await _fail_a_backup(sim)
        async with _server(tree, sim) as client:
            listed = (await client.list_tools()).tools
            visible = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in listed]
            schemas = {t.name: dict(t.input_schema) for t in listed}
            read_only = {t.name for t in listed if t.annotations and t.annotations.read_only_hint}
            facts: dict[str, list[int]] = {}
            per_request = []
            for name, run in REQUESTS:
                agent = Agent(client, schemas, read_only, facts=facts)
                try:
                    await run(agent, sim)
                    verdict = "ok"
                except (NotVerified, KeyError, IndexError, StopIteration, ValueError) as exc:
                    verdict = f"NOT DONE: {type(exc).__name__}: {exc}"
                per_request.append((name, agent.tally, verdict))
            return TreeRun(
                label,
                per_request,
                tools_list=len(json.dumps(visible, separators=(",", ":"), ensure_ascii=False)),
                instructions=len(client.instructions or ""),
                facts=facts,
            )


def checkout(ref: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(into), ref], check=True, capture_output=True
    )
    return into


def remove_checkout(path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False, capture_output=True
    )


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def report(base: TreeRun, head: TreeRun) -> None:
    print(f"{'request':26} | {'calls':>9} | {'read, text-only host':>21} | {'structured host':>17} | facts in text")
    print(f"{'':26} | {'base→now':>9} | {'base→now':>21} | {'base→now':>17} | base→now")
    for (name, old, old_ok), (_, new, new_ok) in zip(base.per_request, head.per_request, strict=True):
        print(
            f"{name:26} | {old.calls:>4}→{new.calls:<4} | {old.read:>10}→{new.read:<10} | "
            f"{old.structured:>8}→{new.structured:<8} | "
            f"{_pct(old.leaves_in_text, old.leaves)}→{_pct(new.leaves_in_text, new.leaves)}"
            + ("" if old_ok == new_ok == "ok" else f"  [base: {old_ok}; now: {new_ok}]")
        )
    old, new = base.total, head.total
    print("-" * 100)
    print(
        f"{'total':26} | {old.calls:>4}→{new.calls:<4} | {old.read:>10}→{new.read:<10} | "
        f"{old.structured:>8}→{new.structured:<8} | "
        f"{_pct(old.leaves_in_text, old.leaves)}→{_pct(new.leaves_in_text, new.leaves)}"
    )
    print(f"text blocks as sent (chars): {old.text}→{new.text}")
    print(
        f"tools/list (model-visible chars): {base.tools_list}→{head.tools_list}; instructions: "
        f"{base.instructions}→{head.instructions}"
    )
    for run in (base, head):
        shares = {tool: carried / total for tool, (total, carried) in run.facts.items() if total}
        low = min(shares, key=lambda t: shares[t]) if shares else "-"
        held = "held" if shares and shares[low] >= FACTS_THRESHOLD else "MISSED"
        print(
            f"{run.label}: read tools, share of structured values in the text: lowest "
            f"{shares.get(low, 0):.0%} ({low}) over {len(shares)} tools — target >= {FACTS_THRESHOLD:.0%}: {held}"
        )
    done = sum(1 for _, _, v in head.per_request if v == "ok")
    fewer_calls = 1 - new.calls / old.calls if old.calls else 0.0
    fewer_read = 1 - new.read / old.read if old.read else 0.0
    print(
        f"requests done and verified: base {sum(1 for _, _, v in base.per_request if v == 'ok')}/"
        f"{len(REQUESTS)}, now {done}/{len(REQUESTS)}"
    )
    for what, value in (("calls", fewer_calls), ("characters read, text-only host", fewer_read)):
        held = "held" if value >= TARGET_FEWER else "MISSED"
        print(f"target >= {TARGET_FEWER:.0%} fewer {what}: {value:.1%} fewer ({held})")
    print("Proximo: not run (needs Python >= 3.12 and its own request script; see bench/peers.py).")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="git ref of the previous release")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        base_tree = checkout(args.base, Path(tmp) / "base")
        try:
            base = await run_tree(f"base {args.base}", base_tree)
        finally:
            remove_checkout(base_tree)
    head = await run_tree("this tree", REPO)
    print(f"base: {args.base}; now: this tree ({REPO})")
    report(base, head)


if __name__ == "__main__":
    anyio.run(main)
