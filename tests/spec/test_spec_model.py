"""Runtime spec access: merged input schemas, output schemas, matching, and the import boundary."""

from __future__ import annotations

import re
import subprocess
import sys

import jsonschema
import pytest

from pvemcp.dialect.convert import anchor
from pvemcp.dialect.model import load_spec


def test_clone_operation_merges_path_and_body() -> None:
    op = load_spec().operation("POST /nodes/{node}/qemu/{vmid}/clone")
    schema = op.input_schema
    assert op.path_params == ("node", "vmid")
    assert {"node", "vmid", "newid", "full", "target", "name"} <= set(schema["properties"])
    assert set(schema["required"]) == {"node", "vmid", "newid"}
    assert schema["additionalProperties"] is False
    assert op.task is True
    assert "VM.Clone" in str(op.permissions)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"node": "pve1", "vmid": 100, "newid": 200, "full": 1})
    assert not validator.is_valid({"node": "pve1", "vmid": 99, "newid": 200})
    assert not validator.is_valid({"node": "pve1", "vmid": 100, "newid": 200, "bogus": 1})
    assert not validator.is_valid({"node": "pve1", "vmid": 100, "newid": 200, "full": "yes"})


def test_get_operation_query_parameters_and_output() -> None:
    op = load_spec().operation("GET /cluster/resources")
    assert op.query_params == ("type",)
    assert op.input_schema["properties"]["type"]["enum"] == ["vm", "storage", "node", "sdn"]
    assert op.output_schema["type"] == "array"
    assert op.task is False


def test_indexed_parameters_are_pattern_properties() -> None:
    schema = load_spec().operation("PUT /nodes/{node}/qemu/{vmid}/config").input_schema
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"node": "pve1", "vmid": 100, "net0": "virtio,bridge=vmbr0"})
    assert validator.is_valid({"node": "pve1", "vmid": 100, "scsi12": "local-lvm:8"})
    assert not validator.is_valid({"node": "pve1", "vmid": 100, "net01": "virtio"})
    assert not validator.is_valid({"node": "pve1", "vmid": 100, "netx": "virtio"})


def test_every_input_and_output_schema_meta_validates() -> None:
    spec = load_spec()
    keys = list(spec.keys())
    assert len(keys) == 646
    for key in keys:
        op = spec.operation(key)
        jsonschema.Draft202012Validator.check_schema(op.input_schema)
        jsonschema.Draft202012Validator.check_schema(op.output_schema)


def test_match_binds_path_parameters_and_prefers_static_segments() -> None:
    spec = load_spec()
    hit = spec.match("POST", "/nodes/pve1/qemu/100/status/start")
    assert hit is not None
    op, bound = hit
    assert op.key == "POST /nodes/{node}/qemu/{vmid}/status/start"
    assert bound == {"node": "pve1", "vmid": "100"}
    hit = spec.match("GET", "/nodes/pve1/qemu")
    assert hit is not None and hit[0].key == "GET /nodes/{node}/qemu"
    assert spec.match("GET", "/nodes/pve1/qemu/100/status/start") is None  # wrong method
    assert spec.path_known("/nodes/pve1/qemu/100/status/start")


@pytest.mark.parametrize(
    "path",
    [
        "/nodes/pve1//qemu",
        "/nodes/pve1/qemu/100/status/start/",
        "/Nodes/pve1/qemu",
        "nodes/pve1/qemu",
        "/no/such",
    ],
)
def test_match_refuses_non_canonical_or_unknown_paths(path: str) -> None:
    assert load_spec().match("POST", path) is None


def test_unknown_operation_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no operation"):
        load_spec().operation("PATCH /version")


@pytest.mark.parametrize(
    ("perl", "matches", "rejects"),
    [
        (r"(?^i:[a-z0-9_][a-z0-9_\-\+\.]*)", ["Abc.d", "x"], ["-a", ""]),
        (r"(?^:^(?^:[^\s:/]+)\@(?^:[A-Za-z][A-Za-z0-9\.\-_]+)$)", ["root@pam"], ["root", "ro ot@pam"]),
        (r"[A-Za-z0-9\-_\s]{,8}", ["abc", ""], ["abcdefghi"]),
        (r"(?^:^((?>[+-]?[\w\-\._=]+,?)+)$)", ["+a,-b"], ["a b"]),
    ],
)
def test_perl_patterns_become_anchored_ecma_patterns(perl: str, matches: list[str], rejects: list[str]) -> None:
    pattern = anchor(perl)
    assert "(?^" not in pattern and "\\@" not in pattern and "{," not in pattern
    for value in matches:
        assert re.search(pattern, value), value
    for value in rejects:
        assert not re.search(pattern, value), value


def test_core_does_not_import_mcp() -> None:
    code = (
        "import sys, pvemcp.core, pvemcp.dialect.model, pvemcp.dialect.generator;"
        "sys.exit(1 if any(m == 'mcp' or m.startswith('mcp.') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
