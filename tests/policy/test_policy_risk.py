"""Risk classification: every operation of the spec, the curated dangerous list, argument rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pvemcp.core.policy import risk_class
from pvemcp.core.policy.risk import (
    CONDITIONAL_RULES,
    DESTRUCTIVE_RULES,
    Risk,
    classify_call,
    classify_operation,
    explain_call,
    explain_operation,
    max_risk,
    normalize_path,
    parse_risk,
)

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "openapi.json"
HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")


def _spec_operations() -> list[tuple[str, str]]:
    if not OPENAPI.is_file():
        pytest.skip("openapi.json is missing")
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    paths = doc.get("paths") or {}
    if not paths:
        pytest.skip("openapi.json is not generated yet (no paths)")
    return [(m.upper(), p) for p, ops in paths.items() for m in ops if m in HTTP_METHODS]


@pytest.fixture(scope="module")
def operations() -> list[tuple[str, str]]:
    return _spec_operations()


# Arguments that trigger every argument-dependent rule at once (and some that trigger none).
DANGEROUS_ARGS: dict[str, Any] = {
    "force": 1,
    "delete": "unused0,scsi1,mp0",
    "template": 1,
    "hookscript": "local:snippets/x.sh",
    "args": "-cpu host",
    "target-vmid": 200,
    "remove": 1,
    "stop": 1,
    "prune-backups": "keep-last=1",
    "forceStop": 1,
}


# --- the whole spec ------------------------------------------------------------------------


def test_every_operation_of_the_spec_is_classified(operations: list[tuple[str, str]]) -> None:
    assert len(operations) == 646
    counts = {r: 0 for r in Risk}
    for method, template in operations:
        risk = classify_operation(method, template)
        counts[risk] += 1
        if method == "GET":
            assert risk is Risk.READ, (method, template)
        elif method == "DELETE":
            assert risk is Risk.DESTRUCTIVE, (method, template)
        else:
            assert method in ("POST", "PUT")
            assert risk in (Risk.WRITE, Risk.DESTRUCTIVE), (method, template)
    # All three classes are really used (a regex that matched everything would fail here).
    assert counts[Risk.READ] == sum(1 for m, _ in operations if m == "GET")
    assert counts[Risk.WRITE] > 50
    assert counts[Risk.DESTRUCTIVE] > 100


def test_every_delete_is_destructive(operations: list[tuple[str, str]]) -> None:
    deletes = [t for m, t in operations if m == "DELETE"]
    assert len(deletes) == 74
    for template in deletes:
        assert classify_operation("DELETE", template) is Risk.DESTRUCTIVE
        assert classify_call("DELETE", template, {}) is Risk.DESTRUCTIVE


def test_every_curated_rule_matches_a_real_operation(operations: list[tuple[str, str]]) -> None:
    """A typo in a rule's pattern would silently make a dangerous endpoint 'write'."""
    for rule in (*DESTRUCTIVE_RULES, *CONDITIONAL_RULES):
        for method in rule.methods:
            hits = [t for m, t in operations if m == method and rule.matches(m, normalize_path(t))]
            assert hits, f"rule {method} {rule.pattern} matches no operation of openapi.json"


def test_a_call_is_never_riskier_than_its_operation(operations: list[tuple[str, str]]) -> None:
    for method, template in operations:
        op = explain_operation(method, template)
        for args in ({}, DANGEROUS_ARGS, {"force": 0, "delete": "description"}):
            call = classify_call(method, template, args)
            assert call.rank <= op.risk.rank, (method, template, args)
        if op.conditional:
            # Conditional operations are destructive only because of some arguments.
            assert classify_call(method, template, {}) is Risk.WRITE, (method, template)
            assert classify_call(method, template, DANGEROUS_ARGS) is Risk.DESTRUCTIVE, (method, template)


def test_destructive_post_put_of_the_spec_are_the_expected_ones(operations: list[tuple[str, str]]) -> None:
    """Spot checks over the real spec: the well-known dangerous endpoints are all there."""
    destructive = {
        f"{m} {t}" for m, t in operations if m in ("POST", "PUT") and classify_operation(m, t) == "destructive"
    }
    expected = {
        "POST /nodes/{node}/qemu/{vmid}/status/stop",
        "POST /nodes/{node}/lxc/{vmid}/status/stop",
        "POST /nodes/{node}/qemu/{vmid}/status/reset",
        "POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
        "POST /nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback",
        "POST /nodes/{node}/qemu/{vmid}/template",
        "POST /nodes/{node}/qemu/{vmid}/migrate",
        "PUT /nodes/{node}/qemu/{vmid}/resize",
        "POST /nodes/{node}/stopall",
        "POST /nodes/{node}/status",
        "POST /nodes/{node}/execute",
        "PUT /nodes/{node}/disks/wipedisk",
        "POST /nodes/{node}/disks/initgpt",
        "POST /nodes/{node}/disks/zfs",
        "POST /nodes/{node}/disks/lvm",
        "PUT /access/acl",
        "POST /access/users",
        "POST /access/users/{userid}/token/{tokenid}",
        "PUT /access/password",
        "PUT /cluster/options",
        "POST /cluster/config/join",
        "POST /cluster/ha/resources",
        "POST /cluster/firewall/rules",
        "PUT /nodes/{node}/qemu/{vmid}/firewall/options",
        "POST /nodes/{node}/ceph/osd/{osdid}/out",
        "POST /nodes/{node}/apt/repositories",
        "POST /nodes/{node}/qemu",
        "PUT /nodes/{node}/qemu/{vmid}/config",
        "POST /nodes/{node}/vzdump",
        "POST /nodes/{node}/qemu/{vmid}/move_disk",
    }
    assert expected <= destructive, sorted(expected - destructive)
    harmless = {
        "POST /nodes/{node}/qemu/{vmid}/status/start",
        "POST /nodes/{node}/qemu/{vmid}/status/reboot",
        "POST /nodes/{node}/qemu/{vmid}/snapshot",
        "POST /nodes/{node}/qemu/{vmid}/clone",
        "POST /nodes/{node}/startall",
        "POST /cluster/bulk-action/guest/start",
        "POST /pools",
        "POST /nodes/{node}/apt/update",
    }
    assert not harmless & destructive, sorted(harmless & destructive)


# --- representative templates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "template", "expected"),
    [
        ("GET", "/cluster/resources", Risk.READ),
        ("GET", "/nodes/{node}/qemu/{vmid}/config", Risk.READ),
        ("DELETE", "/nodes/{node}/qemu/{vmid}", Risk.DESTRUCTIVE),
        ("DELETE", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}", Risk.DESTRUCTIVE),
        ("DELETE", "/storage/{storage}", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/start", Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/stop", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/stop", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/reset", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/reboot", Risk.WRITE),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/reboot", Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/suspend", Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/snapshot", Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/lxc/{vmid}/template", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/lxc/{vmid}/migrate", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/remote_migrate", Risk.DESTRUCTIVE),
        ("PUT", "/nodes/{node}/lxc/{vmid}/resize", Risk.DESTRUCTIVE),
        ("PUT", "/nodes/{node}/qemu/{vmid}/unlink", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/agent/exec", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/agent/ping", Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/monitor", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/qemu/{vmid}/vncproxy", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/termproxy", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/stopall", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/suspendall", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/migrateall", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/startall", Risk.WRITE),
        ("POST", "/cluster/bulk-action/guest/shutdown", Risk.DESTRUCTIVE),
        ("POST", "/cluster/bulk-action/guest/start", Risk.WRITE),
        ("POST", "/nodes/{node}/status", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/execute", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/services/{service}/restart", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/services/{service}/start", Risk.WRITE),
        ("PUT", "/nodes/{node}/network", Risk.DESTRUCTIVE),
        ("PUT", "/nodes/{node}/network/{iface}", Risk.WRITE),
        ("PUT", "/nodes/{node}/disks/wipedisk", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/disks/initgpt", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/disks/lvmthin", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/apt/update", Risk.WRITE),
        ("PUT", "/nodes/{node}/apt/repositories", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/certificates/custom", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/ceph/osd", Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/ceph/osd/{osdid}/in", Risk.WRITE),
        ("PUT", "/cluster/ceph/flags/{flag}", Risk.DESTRUCTIVE),
        ("PUT", "/cluster/options", Risk.DESTRUCTIVE),
        ("POST", "/cluster/config", Risk.DESTRUCTIVE),
        ("POST", "/cluster/ha/resources/{sid}/migrate", Risk.DESTRUCTIVE),
        ("PUT", "/cluster/sdn", Risk.DESTRUCTIVE),
        ("POST", "/cluster/sdn/vnets", Risk.WRITE),
        ("POST", "/cluster/firewall/rules", Risk.DESTRUCTIVE),
        ("PUT", "/nodes/{node}/firewall/options", Risk.DESTRUCTIVE),
        ("POST", "/cluster/sdn/vnets/{vnet}/firewall/rules", Risk.DESTRUCTIVE),
        ("PUT", "/access/acl", Risk.DESTRUCTIVE),
        ("POST", "/access/users/{userid}/token/{tokenid}", Risk.DESTRUCTIVE),
        ("POST", "/access/roles", Risk.DESTRUCTIVE),
        ("PUT", "/pools/{poolid}", Risk.DESTRUCTIVE),
        ("POST", "/pools", Risk.WRITE),
        ("POST", "/storage", Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/clone", Risk.WRITE),
        ("POST", "/cluster/replication", Risk.WRITE),
    ],
)
def test_representative_templates(method: str, template: str, expected: Risk) -> None:
    assert classify_operation(method, template) is expected


@pytest.mark.parametrize("method", ["PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "", "FOO"])
def test_unknown_methods_fail_closed(method: str) -> None:
    assert classify_operation(method, "/version") is Risk.DESTRUCTIVE
    assert classify_call(method, "/version", {}) is Risk.DESTRUCTIVE
    assert "unknown HTTP method" in explain_operation(method, "/version").reason


def test_method_case_and_space_do_not_matter() -> None:
    assert classify_operation(" get ", "/cluster/resources") is Risk.READ
    assert classify_operation("post", "/nodes/{node}/qemu/{vmid}/status/stop") is Risk.DESTRUCTIVE
    assert classify_operation("delete", "/nodes/{node}/qemu/{vmid}") is Risk.DESTRUCTIVE


@pytest.mark.parametrize(
    "path",
    [
        "/nodes/pve1/qemu/100/status/stop",
        "/nodes/pve1/qemu/100/status/stop/",
        "//nodes//pve1/qemu/100/status//stop",
        "/api2/json/nodes/pve1/qemu/100/status/stop",
        "/NODES/pve1/QEMU/100/Status/STOP",
        "%2Fnodes%2Fpve1%2Fqemu%2F100%2Fstatus%2Fstop",
        "/nodes/pve1/qemu/100/status/%73top",
        "/nodes/pve1/qemu/100/status/%2573top",
        "/nodes/pve1/qemu/100/status/start/../stop",
        "/nodes/pve1/qemu/100/./status/stop?foo=bar",
        "nodes/pve1/qemu/100/status/stop",
    ],
)
def test_raw_path_spellings_still_classify_destructive(path: str) -> None:
    """Defence in depth: the spec matcher canonicalizes, but spellings must not slip through here."""
    assert classify_operation("POST", path) is Risk.DESTRUCTIVE


def test_normalize_path() -> None:
    assert normalize_path("//a/./b/../c/") == "/a/c"
    assert normalize_path("/api2/json/version") == "/version"
    assert normalize_path("/a%252Fb") == "/a/b"


def test_reasons_say_what_happens() -> None:
    assert "unsaved data" in explain_operation("POST", "/nodes/{node}/qemu/{vmid}/status/stop").reason
    assert "irreversible" in explain_operation("POST", "/nodes/{node}/qemu/{vmid}/template").reason
    assert explain_operation("GET", "/version").reason == "reads only"
    op = explain_operation("POST", "/nodes/{node}/qemu")
    assert op.conditional and op.risk is Risk.DESTRUCTIVE
    assert not explain_operation("POST", "/nodes/{node}/qemu/{vmid}/status/stop").conditional


# --- argument-dependent calls -------------------------------------------------------------

QEMU_CREATE = "/nodes/{node}/qemu"
LXC_CREATE = "/nodes/{node}/lxc"
QEMU_CONFIG = "/nodes/{node}/qemu/{vmid}/config"
LXC_CONFIG = "/nodes/{node}/lxc/{vmid}/config"


@pytest.mark.parametrize(
    ("method", "template", "args", "expected"),
    [
        # create / restore
        ("POST", QEMU_CREATE, {"vmid": 100, "memory": 2048}, Risk.WRITE),
        ("POST", QEMU_CREATE, {"vmid": 100, "archive": "local:backup/vzdump-qemu-100.vma.zst"}, Risk.WRITE),
        ("POST", QEMU_CREATE, {"vmid": 100, "archive": "local:backup/x.vma", "force": 1}, Risk.DESTRUCTIVE),
        ("POST", QEMU_CREATE, {"vmid": 100, "archive": "x", "force": True}, Risk.DESTRUCTIVE),
        ("POST", QEMU_CREATE, {"vmid": 100, "archive": "x", "force": "yes"}, Risk.DESTRUCTIVE),
        ("POST", QEMU_CREATE, {"vmid": 100, "archive": "x", "force": 0}, Risk.WRITE),
        ("POST", QEMU_CREATE, {"vmid": 100, "archive": "x", "force": "false"}, Risk.WRITE),
        ("POST", QEMU_CREATE, {"vmid": 100, "hookscript": "local:snippets/h.pl"}, Risk.DESTRUCTIVE),
        ("POST", LXC_CREATE, {"vmid": 100, "ostemplate": "local:backup/x.tar", "restore": 1}, Risk.WRITE),
        ("POST", LXC_CREATE, {"vmid": 100, "ostemplate": "x", "restore": 1, "force": 1}, Risk.DESTRUCTIVE),
        # config updates
        ("PUT", QEMU_CONFIG, {"memory": 4096, "name": "web"}, Risk.WRITE),
        ("POST", QEMU_CONFIG, {"cores": 2}, Risk.WRITE),
        ("PUT", QEMU_CONFIG, {"delete": "description,net1"}, Risk.WRITE),
        ("PUT", QEMU_CONFIG, {"delete": "unused0"}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"delete": "net1, scsi1"}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"delete": "net1;virtio2"}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"delete": ["efidisk0"]}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"Delete": "tpmstate0"}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"delete": "virtiofs0"}, Risk.WRITE),
        ("PUT", QEMU_CONFIG, {"delete": "scsi0", "force": 1}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"template": 1}, Risk.DESTRUCTIVE),
        ("PUT", QEMU_CONFIG, {"args": "-device foo"}, Risk.DESTRUCTIVE),
        ("PUT", LXC_CONFIG, {"delete": "mp0"}, Risk.DESTRUCTIVE),
        ("PUT", LXC_CONFIG, {"delete": "rootfs"}, Risk.DESTRUCTIVE),
        ("PUT", LXC_CONFIG, {"hostname": "ct1", "delete": "nameserver"}, Risk.WRITE),
        # move disk / volume
        ("POST", "/nodes/{node}/qemu/{vmid}/move_disk", {"disk": "scsi0", "storage": "fast"}, Risk.WRITE),
        (
            "POST",
            "/nodes/{node}/qemu/{vmid}/move_disk",
            {"disk": "scsi0", "storage": "f", "delete": 1},
            Risk.DESTRUCTIVE,
        ),
        ("POST", "/nodes/{node}/qemu/{vmid}/move_disk", {"disk": "scsi0", "target-vmid": 200}, Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/lxc/{vmid}/move_volume", {"volume": "mp0", "storage": "f"}, Risk.WRITE),
        ("POST", "/nodes/{node}/lxc/{vmid}/move_volume", {"volume": "mp0", "delete": "1"}, Risk.DESTRUCTIVE),
        # backups
        ("POST", "/nodes/{node}/vzdump", {"vmid": "100", "storage": "local"}, Risk.WRITE),
        ("POST", "/nodes/{node}/vzdump", {"vmid": "100", "remove": 1}, Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/vzdump", {"vmid": "100", "remove": 0}, Risk.WRITE),
        ("POST", "/nodes/{node}/vzdump", {"vmid": "100", "prune-backups": "keep-last=1"}, Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/vzdump", {"vmid": "100", "prune-backups": "keep-last=1", "remove": 0}, Risk.WRITE),
        ("POST", "/nodes/{node}/vzdump", {"stop": 1}, Risk.DESTRUCTIVE),
        ("POST", "/cluster/backup", {"schedule": "daily", "all": 1}, Risk.WRITE),
        ("POST", "/cluster/backup", {"schedule": "daily", "prune-backups": "keep-last=1"}, Risk.DESTRUCTIVE),
        # shutdown
        ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", {}, Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", {"timeout": 30}, Risk.WRITE),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", {"forceStop": 1}, Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown", {"forceStop": True}, Risk.DESTRUCTIVE),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown", {"forceStop": 0}, Risk.WRITE),
        # static rules ignore arguments
        ("POST", "/nodes/{node}/qemu/{vmid}/status/stop", {}, Risk.DESTRUCTIVE),
        ("GET", "/nodes/{node}/qemu/{vmid}/config", {"force": 1}, Risk.READ),
        ("POST", "/nodes/{node}/qemu/{vmid}/status/start", {"force": 1}, Risk.WRITE),
    ],
)
def test_classify_call(method: str, template: str, args: dict[str, Any], expected: Risk) -> None:
    assert classify_call(method, template, args) is expected


def test_classify_call_none_args_is_the_base_case() -> None:
    assert classify_call("PUT", QEMU_CONFIG, None) is Risk.WRITE


def test_call_reason_names_the_dangerous_argument() -> None:
    c = explain_call("PUT", QEMU_CONFIG, {"delete": "unused0,net1"})
    assert c.risk is Risk.DESTRUCTIVE and "unused0" in c.reason and "net1" not in c.reason
    c = explain_call("POST", QEMU_CREATE, {"archive": "x", "force": 1})
    assert "overwrites an existing guest" in c.reason
    c = explain_call("POST", "/nodes/{node}/qemu/{vmid}/move_disk", {"delete": 1, "target-vmid": 5})
    assert "deletes the source" in c.reason and "another" in c.reason


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("read", Risk.READ),
        (" Write ", Risk.WRITE),
        ("DESTRUCTIVE", Risk.DESTRUCTIVE),
        (Risk.WRITE, Risk.WRITE),
        ("danger", Risk.DESTRUCTIVE),
        ("", Risk.DESTRUCTIVE),
        (None, Risk.DESTRUCTIVE),
        (1, Risk.DESTRUCTIVE),
    ],
)
def test_parse_risk_fails_closed(value: object, expected: Risk) -> None:
    assert parse_risk(value) is expected


def test_max_risk_and_order() -> None:
    assert Risk.READ.rank < Risk.WRITE.rank < Risk.DESTRUCTIVE.rank
    assert max_risk([]) is Risk.READ
    assert max_risk([Risk.READ, Risk.WRITE]) is Risk.WRITE
    assert max_risk([Risk.READ, Risk.DESTRUCTIVE, Risk.WRITE]) is Risk.DESTRUCTIVE
    assert max_risk([Risk.READ, "typo"]) is Risk.DESTRUCTIVE  # type: ignore[list-item]  # fails closed


def test_policy_core_does_not_import_mcp() -> None:
    code = "import sys, pvemcp.core.policy, pvemcp.core.policy.ledger; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_catalog_types_risk_without_loading_the_classifier() -> None:
    """The catalog (loaded at every server start) needs the Risk type, not the classifier's ~100 rules."""
    code = (
        "import sys, pvemcp.core.catalog; print(sorted(m for m in sys.modules if m.startswith('pvemcp.core.policy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pvemcp.core.policy', 'pvemcp.core.policy.risk_class']"
    assert Risk is risk_class.Risk  # the classifier re-exports the one enum, it does not define another
