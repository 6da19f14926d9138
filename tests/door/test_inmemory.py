"""The door through the official MCP client, in-memory, in both protocol eras.

``mode="auto"`` negotiates 2026-07-28 (confirmation travels as ``InputRequiredResult`` + sealed
``request_state``); ``mode="legacy"`` negotiates 2025-11-25 (confirmation is a back-channel
``elicitation/create``). The real App talks to a real simulator over loopback HTTPS; the client
validates every structured result against the tool's outputSchema, so schema drift fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from pvemcp.door._core import App
from pvemcp.door.server import build_server
from pvemcp.sim.runner import RunningSimulator

from .helpers import MODES, Answers, guest_with, ledger, mutating, text_of

pytestmark = pytest.mark.anyio

HINTS = ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint")


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_list_tools_complete_and_exact(app: App, mode: str) -> None:
    async with Client(build_server(app), mode=mode) as client:
        assert client.protocol_version == MODES[mode]
        tools = (await client.list_tools()).tools
    defs = {t.name: t for t in app.tools()}
    assert [t.name for t in tools] == list(defs)
    for tool in tools:
        assert tool.title, tool.name
        assert tool.description, tool.name
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", tool.name
        assert tool.annotations is not None
        for hint in HINTS:
            assert isinstance(getattr(tool.annotations, hint), bool), (tool.name, hint)
        # the generated schema reaches the wire untouched
        assert tool.input_schema == defs[tool.name].input_schema
        assert tool.annotations.read_only_hint == defs[tool.name].annotations["readOnlyHint"]
        assert tool.annotations.destructive_hint == defs[tool.name].annotations["destructiveHint"]


async def test_server_identity(app: App, mode: str) -> None:
    async with Client(build_server(app), mode=mode) as client:
        assert client.server_info is None or client.server_info.name == "pvemcp"
        assert client.instructions


async def test_read_tools_return_validated_structured_content(app: App, sim: RunningSimulator, mode: str) -> None:
    running = guest_with(sim, status="running")
    node = sim.state.guests[running].node
    async with Client(build_server(app), mode=mode) as client:
        listing = await client.call_tool("guest_list", {})
        assert not listing.is_error, text_of(listing)
        assert listing.structured_content is not None
        assert listing.structured_content["total"] == len(sim.state.guests)
        assert {g["vmid"] for g in listing.structured_content["items"]} <= set(sim.state.guests)

        filtered = await client.call_tool("guest_list", {"type": "lxc"})
        assert filtered.structured_content is not None
        assert all(g["type"] == "lxc" for g in filtered.structured_content["items"])

        status = await client.call_tool("guest_status", {"vmid": running})
        assert not status.is_error, text_of(status)
        assert status.structured_content is not None
        assert status.structured_content["data"]["status"] == "running"

        reads: list[tuple[str, dict[str, Any]]] = [
            ("cluster_status", {}),
            ("node_status", {"node": node}),
            ("next_vmid", {}),
            ("storage_list", {}),
            ("task_list", {}),
            ("guest_config", {"vmid": running}),
            ("snapshot_list", {"vmid": running}),
            ("backup_jobs", {}),
            ("api_search", {"query": "snapshot"}),
        ]
        for tool, args in reads:
            result = await client.call_tool(tool, args)
            assert not result.is_error, (tool, text_of(result))
            assert isinstance(result.structured_content, dict), tool
            assert text_of(result), tool
    assert mutating(sim) == []


async def test_write_tool_changes_the_cluster(app: App, sim: RunningSimulator, mode: str) -> None:
    stopped = guest_with(sim, status="stopped")
    async with Client(build_server(app), mode=mode) as client:
        result = await client.call_tool("guest_start", {"vmid": stopped})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None and result.structured_content["ok"] == 1
    assert sim.state.guests[stopped].status == "running"
    assert [r.path for r in mutating(sim)] == [f"/nodes/{sim.state.guests[stopped].node}/qemu/{stopped}/status/start"]


async def test_confirmation_accepted_runs_once(app: App, sim: RunningSimulator, audit_log: Path, mode: str) -> None:
    vmid = guest_with(sim, status="running")
    answers = Answers("accept")
    async with Client(build_server(app), mode=mode, elicitation_callback=answers) as client:
        result = await client.call_tool("guest_stop", {"vmid": vmid})
    assert not result.is_error, text_of(result)
    assert len(answers.questions) == 1
    question = answers.questions[0]
    assert str(vmid) in question and sim.state.guests[vmid].name in question
    assert "unsaved data" in question  # the consequence is spelled out
    assert sim.state.guests[vmid].status == "stopped"
    assert len(mutating(sim)) == 1
    records = ledger(audit_log)
    assert records and records[-1]["caller"] == "local"


@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_confirmation_refused_sends_nothing(
    app: App, sim: RunningSimulator, audit_log: Path, mode: str, action: str, confirm: bool
) -> None:
    vmid = guest_with(sim, status="running")
    answers = Answers(action, confirm=confirm)
    async with Client(build_server(app), mode=mode, elicitation_callback=answers) as client:
        result = await client.call_tool("guest_stop", {"vmid": vmid})
    assert len(answers.questions) == 1
    assert "nothing was sent" in text_of(result).lower()
    assert sim.state.guests[vmid].status == "running"
    assert mutating(sim) == []
    assert any(r.get("outcome") == "declined" for r in ledger(audit_log))


async def test_client_without_elicitation_gets_token_fallback(app: App, sim: RunningSimulator, mode: str) -> None:
    vmid = guest_with(sim, status="running")
    async with Client(build_server(app), mode=mode) as client:
        preview = await client.call_tool("guest_stop", {"vmid": vmid})
        assert preview.structured_content is not None
        confirmation = preview.structured_content["confirmation"]
        assert mutating(sim) == []
        done = await client.call_tool("guest_stop", {"vmid": vmid, "confirm_token": confirmation["confirm_token"]})
    assert not done.is_error, text_of(done)
    assert sim.state.guests[vmid].status == "stopped"


ACCEPT: types.InputResponses = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}


async def test_prefilled_answer_without_state_confirms_nothing(app: App, sim: RunningSimulator) -> None:
    vmid = guest_with(sim, status="running")
    async with Client(build_server(app), mode="auto", elicitation_callback=Answers("decline")) as client:
        first = await client.session.call_tool(
            "guest_stop", {"vmid": vmid}, input_responses=ACCEPT, allow_input_required=True
        )
        assert isinstance(first, types.InputRequiredResult)  # asked, not run
        assert first.request_state and first.request_state.startswith("v1.")  # sealed, opaque
    assert mutating(sim) == []
    assert sim.state.guests[vmid].status == "running"


@pytest.mark.parametrize(
    "state", ["confirm-v1", "confirm-v1.guess", "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""]
)
async def test_forged_request_state_is_refused(app: App, sim: RunningSimulator, state: str) -> None:
    vmid = guest_with(sim, status="running")
    async with Client(build_server(app), mode="auto", elicitation_callback=Answers("accept")) as client:
        with pytest.raises(MCPError) as info:
            await client.session.call_tool(
                "guest_stop", {"vmid": vmid}, input_responses=ACCEPT, request_state=state, allow_input_required=True
            )
    assert info.value.code == types.INVALID_PARAMS
    assert mutating(sim) == []


async def test_sealed_state_cannot_be_replayed_or_moved(app: App, sim: RunningSimulator) -> None:
    vmid = guest_with(sim, status="running")
    other = next(v for v in sorted(sim.state.guests) if v != vmid and sim.state.guests[v].status == "running")
    async with Client(build_server(app), mode="auto", elicitation_callback=Answers("accept")) as client:
        asked = await client.session.call_tool("guest_stop", {"vmid": vmid}, allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult)
        state = asked.request_state
        # the same sealed state with other arguments, or for another tool: refused
        with pytest.raises(MCPError):
            await client.session.call_tool(
                "guest_stop", {"vmid": other}, input_responses=ACCEPT, request_state=state, allow_input_required=True
            )
        with pytest.raises(MCPError):
            await client.session.call_tool(
                "guest_delete", {"vmid": vmid}, input_responses=ACCEPT, request_state=state, allow_input_required=True
            )
        assert mutating(sim) == []
        # the legitimate answer runs the call once...
        done = await client.session.call_tool(
            "guest_stop", {"vmid": vmid}, input_responses=ACCEPT, request_state=state, allow_input_required=True
        )
        assert isinstance(done, types.CallToolResult) and not done.is_error, done
        assert len(mutating(sim)) == 1
        # ...and replaying it afterwards is refused
        with pytest.raises(MCPError):
            await client.session.call_tool(
                "guest_stop", {"vmid": vmid}, input_responses=ACCEPT, request_state=state, allow_input_required=True
            )
    assert len(mutating(sim)) == 1
    assert sim.state.guests[other].status == "running"


async def test_retry_without_answer_asks_again(app: App, sim: RunningSimulator) -> None:
    vmid = guest_with(sim, status="running")
    async with Client(build_server(app), mode="auto", elicitation_callback=Answers("accept")) as client:
        asked = await client.session.call_tool("guest_stop", {"vmid": vmid}, allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult)
        again = await client.session.call_tool(
            "guest_stop", {"vmid": vmid}, request_state=asked.request_state, allow_input_required=True
        )
        assert isinstance(again, types.InputRequiredResult)
        assert again.request_state != asked.request_state
    assert mutating(sim) == []


async def test_legacy_era_ignores_prefilled_answers(app: App, sim: RunningSimulator) -> None:
    vmid = guest_with(sim, status="running")
    answers = Answers("decline")
    async with Client(build_server(app), mode="legacy", elicitation_callback=answers) as client:
        result = await client.session.call_tool("guest_stop", {"vmid": vmid}, input_responses=ACCEPT)
    assert isinstance(result, types.CallToolResult)
    assert answers.questions  # the server asked for itself
    assert mutating(sim) == []


async def test_progress_notifications_while_waiting(app: App, sim: RunningSimulator, mode: str) -> None:
    vmid = guest_with(sim, status="stopped")
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(build_server(app), mode=mode) as client:
        result = await client.call_tool("guest_start", {"vmid": vmid, "wait": 60}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    assert seen, "no progress notification received"
    values = [p for p, _, _ in seen]
    assert values == sorted(set(values))  # strictly increasing
    assert any(m for _, _, m in seen)


async def test_invalid_arguments_name_the_field_and_send_nothing(app: App, sim: RunningSimulator, mode: str) -> None:
    before = len(sim.request_log)
    async with Client(build_server(app), mode=mode) as client:
        bad_type = await client.call_tool("guest_status", {"vmid": "one hundred"})
        missing = await client.call_tool("guest_stop", {})
        extra = await client.call_tool("guest_list", {"colour": "blue"})
    for result, field in [(bad_type, "vmid"), (missing, "vmid"), (extra, "colour")]:
        assert result.is_error
        assert field in text_of(result), text_of(result)
    assert len(sim.request_log) == before


async def test_unknown_tool_is_a_protocol_error(app: App, sim: RunningSimulator, mode: str) -> None:
    async with Client(build_server(app), mode=mode) as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("guest_explode", {"vmid": 100})
    assert info.value.code == types.INVALID_PARAMS
    assert "guest_explode" in info.value.message
    assert mutating(sim) == []


async def test_resources(app: App, sim: RunningSimulator, mode: str) -> None:
    vmid = guest_with(sim, status="running")
    async with Client(build_server(app), mode=mode) as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        assert "pve://cluster/overview" in [str(r.uri) for r in resources]
        assert "pve://guests/{vmid}/config" in [t.uri_template for t in templates]
        overview = await client.read_resource("pve://cluster/overview")
        config = await client.read_resource(f"pve://guests/{vmid}/config")
        with pytest.raises(MCPError):
            await client.read_resource("pve://nowhere")
    assert isinstance(overview.contents[0], types.TextResourceContents)
    assert overview.contents[0].mime_type == "application/json"
    assert isinstance(config.contents[0], types.TextResourceContents)
    assert "digest" in config.contents[0].text


async def test_cancellation_propagates_and_the_server_keeps_serving(mode: str, tmp_path: Path) -> None:
    from pvemcp.door._core import load_app_config
    from pvemcp.sim import running_simulator

    from .helpers import cluster_env

    # Real-time task speed: the start task runs long enough to be cancelled after its first progress report.
    async with running_simulator(seed=1, task_speed=1.0) as slow:
        vmid = guest_with(slow, status="stopped")
        app = App(load_app_config(config_path=None, env=cluster_env(slow)))
        first_progress = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            first_progress.set()

        async with app, Client(build_server(app), mode=mode) as client:
            outcome: list[Any] = []

            async def call() -> None:
                outcome.append(
                    await client.call_tool("guest_start", {"vmid": vmid, "wait": 600}, progress_callback=on_progress)
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await first_progress.wait()
                tg.cancel_scope.cancel()
            assert outcome == []  # the call was abandoned, not answered
            after = await client.call_tool("guest_status", {"vmid": vmid})
            assert not after.is_error
