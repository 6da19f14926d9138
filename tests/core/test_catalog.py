"""The curated catalog: covers the seed guide, declares every hint and fits the token budget (its golden
listings are tests/core/test_listings.py's)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from budgets import TOOL_LIST_BUDGET
from pvemcp.core.catalog import Catalog, CatalogError, condense, model_schema
from pvemcp.core.policy.risk import Risk, classify_operation
from pvemcp.dialect.model import load_spec

# Every operation of the seed guide's table (../shared/seed/PROXMOX_API_LLM_GUIDE.md) except login,
# which the shared client performs from the configured credentials (tests/client covers it).
SEED_OPERATIONS = [
    "GET /nodes/{node}/qemu",
    "POST /nodes/{node}/qemu",
    "GET /nodes/{node}/qemu/{vmid}/status/current",
    "POST /nodes/{node}/qemu/{vmid}/status/start",
    "POST /nodes/{node}/qemu/{vmid}/status/stop",
    "POST /nodes/{node}/qemu/{vmid}/status/shutdown",
    "POST /nodes/{node}/qemu/{vmid}/status/reboot",
    "POST /nodes/{node}/qemu/{vmid}/clone",
    "DELETE /nodes/{node}/qemu/{vmid}",
    "GET /nodes/{node}/qemu/{vmid}/config",
    "PUT /nodes/{node}/qemu/{vmid}/config",
    "GET /nodes/{node}/lxc",
    "POST /nodes/{node}/lxc",
    "GET /nodes/{node}/lxc/{vmid}/status/current",
    "POST /nodes/{node}/lxc/{vmid}/status/start",
    "POST /nodes/{node}/lxc/{vmid}/status/stop",
    "GET /storage",
    "GET /nodes/{node}/storage",
    "GET /nodes/{node}/storage/{storage}/content",
    "GET /nodes/{node}/qemu/{vmid}/snapshot",
    "POST /nodes/{node}/qemu/{vmid}/snapshot",
    "POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
    "GET /cluster/backup",
    "POST /cluster/backup",
    "POST /nodes/{node}/vzdump",
    "GET /nodes/{node}/status",
    "GET /cluster/status",
    "GET /nodes/{node}/tasks",
    "GET /nodes/{node}/tasks/{upid}/status",
    "GET /cluster/nextid",
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(load_spec())


def test_every_seed_operation_is_driven_by_a_tool(catalog: Catalog) -> None:
    driven = {op for tool in catalog.tools.values() for op in tool.operations.values()}
    missing = [op for op in SEED_OPERATIONS if op not in driven]
    assert not missing, f"no tool drives {missing}"


def test_every_tool_declares_all_four_hints_and_a_title(catalog: Catalog) -> None:
    for tool in catalog.tools.values():
        assert set(tool.annotations) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
        assert tool.title and tool.description
        # Hints come from the classifier that enforces policy: never "not destructive" where it may be.
        worst = {classify_operation(*op.split(" ", 1)) for op in tool.operations.values()}
        may_destroy = tool.risk is Risk.DESTRUCTIVE or Risk.DESTRUCTIVE in worst
        assert tool.annotations["destructiveHint"] == may_destroy, tool.name
        assert tool.annotations["readOnlyHint"] == (tool.risk is Risk.READ and worst <= {Risk.READ}), tool.name


def test_schemas_are_valid_and_strict_server_side(catalog: Catalog) -> None:
    for tool in catalog.tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        jsonschema.Draft202012Validator.check_schema(tool.validation_schema)
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.validation_schema["additionalProperties"] is False
        assert not jsonschema.Draft202012Validator(tool.validation_schema).is_valid({"no_such_argument": 1})


def test_guest_tools_find_the_node_themselves(catalog: Catalog) -> None:
    for tool in catalog.tools.values():
        if tool.guest_scoped:
            assert "node" not in tool.input_schema.get("required", []), tool.name


def test_mutating_tools_offer_dry_run_and_token_confirmation(catalog: Catalog) -> None:
    for tool in catalog.tools.values():
        props = tool.input_schema["properties"]
        assert ("dry_run" in props) == tool.mutating, tool.name
        assert ("confirm_token" in props) == tool.mutating, tool.name


def test_model_visible_tool_list_fits_the_budget(catalog: Catalog) -> None:
    visible = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in catalog.select()]
    size = len(json.dumps(visible, separators=(",", ":")))
    assert size <= TOOL_LIST_BUDGET, f"{size} characters > {TOOL_LIST_BUDGET}"


def test_read_only_selection_hides_mutating_tools(catalog: Catalog) -> None:
    names = {t.name for t in catalog.select(read_only=True)}
    assert "guest_list" in names and "guest_stop" not in names
    assert "api_get" in names and "api_call" not in names  # the generic tool is split: reads stay listed
    with pytest.raises(CatalogError, match="unknown toolset"):
        catalog.select(["guests", "nope"])


def test_parameters_come_from_the_spec(catalog: Catalog) -> None:
    shutdown = catalog.tools["guest_shutdown"]
    spec_schema = load_spec().operation("POST /nodes/{node}/qemu/{vmid}/status/shutdown").input_schema
    assert shutdown.input_schema["properties"]["forceStop"]["type"] == "boolean"
    assert spec_schema["properties"]["forceStop"]["x-pve-type"] == "boolean"
    create = catalog.tools["vm_create"]
    assert create.input_schema["properties"]["net0"]["type"] == ["string", "object"]
    # a long enum gives way to an example of its common values (planning checks the operation's enum)
    assert "l26" in create.input_schema["properties"]["ostype"]["description"]


def test_parameters_whose_format_is_not_obvious_are_described(catalog: Catalog) -> None:
    def described(tool: str, param: str) -> str:
        return str(catalog.tools[tool].input_schema["properties"][param].get("description", ""))

    assert "local-lvm:8" in described("ct_create", "rootfs") and "local-lvm:32" in described("vm_create", "scsi0")
    assert "sat 02:00" in described("backup_job_create", "schedule")
    assert "keep-daily=7" in described("backup_job_create", "prune-backups")
    assert "start" in described("snapshot_rollback", "start") and "e.g." in described("guest_list", "fields")
    waits = {t.name: t.input_schema["properties"]["wait"].get("default") for t in catalog.select() if t.wait}
    assert waits["backup_now"] == 600 and waits["guest_start"] == 60
    # backup_now takes one vmid as an integer, like every other tool; several go in vmids
    assert catalog.tools["backup_now"].input_schema["properties"]["vmid"] == {"type": "integer"}


def test_guests_are_addressed_by_vmid_or_name_and_node_is_not_asked(catalog: Catalog) -> None:
    for tool in catalog.select():
        if tool.guest_scoped:
            props = tool.input_schema["properties"]
            assert "node" not in props and "node" not in tool.validation_schema["properties"], tool.name
            assert "name" in props, tool.name  # an address, or (clone) the new guest's name
            assert "vmid" not in tool.input_schema.get("required", []) or "name" in tool.api_params, tool.name


def test_a_tool_naming_an_unknown_operation_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tools.yaml"
    bad.write_text(
        "default_toolsets: [x]\ntoolsets: {x: [t]}\ntools:\n  t: {title: T, description: d, handler: api_read,"
        " risk: read, operations: ['GET /no/such']}\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match="no operation"):
        Catalog.load(load_spec(), bad)


def test_condensing_descriptions() -> None:
    assert condense("The number of cores per socket.") == "number of cores per socket"
    assert condense("x" * 80) == ""
    schema = model_schema({"type": "integer", "minimum": 100, "maximum": 999999999, "description": "The VM."}, "vmid")
    assert schema == {"type": "integer"}
