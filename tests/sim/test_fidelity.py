"""Fidelity: the simulator's responses have the keys and value types of real PVE responses.

Every recorded response in ``../shared/pve-fixtures`` (listed in its INDEX.md) is paired with the same
request against the simulator. Per endpoint, items are grouped (by ``type`` for resource lists, the
``current`` pseudo-snapshot apart) and compared: keys the fixture has must exist in the simulator's answer
and keys the simulator adds must be known — both up to explicit, documented allowances:

* ``optional``: keys that depend on the guest's configuration or data (``serial`` only with a serial
  port, ``lxc`` raw keys, ``parent`` of a snapshot that has one, storage-type specific options …);
* ``newer``: keys PVE 9 added that older fixtures lack (notes §6: ``memhost``, ``pressure*``,
  ``boot-info``/``current-kernel``, ``altnames``);
* ``types``: value-type differences the notes list as version changes (lxc index ``vmid`` was a string
  before 8.2, qemu ``memory`` a number before 8.1).

Error responses compare status and envelope keys (9.x adds ``message`` to pre-8.3 envelopes).
The test skips when ``../shared`` is absent; fixtures are read in place, never copied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pvemcp.dialect.upid import parse_upid
from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "pve-fixtures"
PRESSURE = {"pressurecpusome", "pressurecpufull", "pressureiosome", "pressureiofull"} | {
    "pressurememorysome",
    "pressurememoryfull",
}


@dataclass(frozen=True)
class Case:
    """One fixture and the simulator request that corresponds to it."""

    fixture: str
    method: str
    path: str
    data: dict[str, str] | None = None
    optional: frozenset[str] = frozenset()
    newer: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    kind: str = "shape"  # shape | error | upid | scalar
    notes: dict[str, Any] = field(default_factory=dict)


def _c(fixture: str, path: str, method: str = "GET", **kw: Any) -> Case:
    for key in ("optional", "newer", "types"):
        if key in kw:
            kw[key] = frozenset(kw[key])
    return Case(fixture, method, path, **kw)


CASES: list[Case] = [
    _c("go-proxmox__POST_access_ticket.json", "/access/ticket", "POST", data={"login": "1"}),
    _c("go-proxmox__GET_cluster_status.json", "/cluster/status"),
    _c("go-proxmox__GET_cluster_resources.json", "/cluster/resources", optional={"pool", "tags"}, newer={"memhost"}),
    _c(
        "community.proxmox__GET_cluster_resources__type_vm.json",
        "/cluster/resources?type=vm",
        optional={"pool", "tags"},
        newer={"memhost"},
    ),
    _c("go-proxmox__GET_cluster_nextid.json", "/cluster/nextid", kind="scalar"),
    _c("go-proxmox__GET_cluster_nextid__vmid_exists__400.json", "/cluster/nextid?vmid=100", kind="error"),
    _c("go-proxmox__GET_nodes.json", "/nodes"),
    _c("unattributed-pve9__GET_nodes.json", "/nodes"),
    _c("go-proxmox__GET_nodes_node_status__pve7.json", "/nodes/pve1/status", newer={"boot-info", "current-kernel"}),
    _c("go-proxmox__GET_nodes_node_version__pve7.json", "/nodes/pve1/version"),
    _c("go-proxmox__GET_nodes_doesntexist_status__500.json", "/nodes/doesntexist/status", kind="error"),
    _c(
        "go-proxmox__GET_qemu_vmid_status_current__running.json",
        "/nodes/pve1/qemu/100/status/current",
        # balloon_min/shares only with a balloon target configured, spice only with a SPICE display
        optional={"balloon_min", "shares", "spice", "tags"},
        newer={"memhost", *PRESSURE},
    ),
    _c(
        "go-proxmox__GET_nodes_node_lxc__pre82.json",
        "/nodes/pve3/lxc",
        optional={"template", "tags"},
        newer=PRESSURE,
        types={"vmid"},
    ),
    _c(
        "community.proxmox__GET_nodes_node_lxc__vmid_string.json",
        "/nodes/pve3/lxc",
        optional={"tags"},
        newer=PRESSURE,
        types={"vmid"},
    ),
    _c(
        "go-proxmox__GET_lxc_vmid_status_current__stopped_template.json",
        "/nodes/pve3/lxc/109/status/current",
        optional={"template"},  # the seeded cluster has no container template
    ),
    _c(
        "go-proxmox__GET_lxc_vmid_config.json",
        "/nodes/pve3/lxc/103/config",
        optional={"lxc", "mp0", "unprivileged"},
    ),
    _c("go-proxmox__GET_lxc_vmid_snapshot__edited.json", "/nodes/pve1/lxc/107/snapshot", optional={"parent"}),
    _c("go-proxmox__DELETE_lxc_vmid.json", "/nodes/pve3/lxc/109", "DELETE", kind="upid", notes={"type": "vzdestroy"}),
    _c("go-proxmox__GET_nodes_node_network.json", "/nodes/pve1/network", newer={"altnames"}),
    _c("unattributed-pve9__GET_nodes_node_network.json", "/nodes/pve1/network"),
    _c("go-proxmox__GET_pools_poolid.json", "/pools/dev", optional={"tags", "pool"}, newer={"memhost"}),
    _c(
        "community.proxmox__GET_nodes_node_qemu.json",
        "/nodes/pve1/qemu",
        # PVE 9 dropped diskread/diskwrite from the qemu index (see the two PVE 9 captures below)
        optional={"diskread", "diskwrite", "tags", "template", "serial"},
        newer={"memhost", *PRESSURE},
    ),
    _c("unattributed-pve9__GET_nodes_node_qemu__a.json", "/nodes/pve1/qemu", optional={"tags"}),
    _c("unattributed-pve9__GET_nodes_node_qemu__b.json", "/nodes/pve1/qemu", optional={"tags", "template"}),
    _c("community.proxmox__GET_nodes_node_tasks__pve64.json", "/nodes/pve1/tasks?typefilter=srvreload"),
    _c(
        "community.proxmox__GET_storage_content__pbs.json",
        "/nodes/pve1/storage/nfs-shared/content?content=backup",
        optional={"notes", "protected"},
    ),
    _c(
        "community.proxmox__GET_storage.json",
        "/storage",
        # storage.cfg options are per plugin type (pbs/zfspool there, dir/lvmthin/nfs here)
        optional={
            "datastore",
            "fingerprint",
            "nodes",
            "pool",
            "shared",
            "sparse",
            "username",
            "export",
            "options",
            "path",
            "thinpool",
            "vgname",
            "prune-backups",
            "server",
        },
    ),
    _c("unattributed-pve9__GET_nodes_node_storage.json", "/nodes/pve1/storage"),
    _c("unattributed-pve9__GET_qemu_vmid_agent.json", "/nodes/pve1/qemu/100/agent"),
    _c(
        "unattributed-pve9__GET_qemu_vmid_agent_network-get-interfaces.json",
        "/nodes/pve1/qemu/100/agent/network-get-interfaces",
    ),
    _c(
        "proxmox-operator__GET_qemu_vmid_config__pve7.json",
        "/nodes/pve1/qemu/100/config",
        optional={"bios", "hotplug", "kvm", "tablet", "tags"},
        types={"memory"},
    ),
    _c(
        "lnvps-api__GET_qemu_vmid_config__pve9.json",
        "/nodes/pve3/qemu/110/config",
        optional={
            "ipconfig0",
            "kvm",
            "scsi1",
            "serial0",
            "sshkeys",
            "ide0",
            "ide2",
            "name",
            "numa",
            "sockets",
            "tags",
            "tpmstate0",
        },
    ),
    # tokenid: only for tasks started with an API token, as these are
    _c("community.proxmox__GET_task_status__vzdump__edited.json", "vzdump", kind="vzdump-status", optional={"tokenid"}),
    _c("community.proxmox__GET_task_log__vzdump_excerpt.json", "vzdump", kind="vzdump-log"),
    _c(
        "community.proxmox__POST_vzdump__guests_elsewhere.json",
        "/nodes/pve3/vzdump",
        "POST",
        data={"vmid": "100"},
        kind="scalar",
    ),
    # POST /cluster/sdn/zones is not modelled: only the 9.x error envelope is compared
    _c(
        "terraform-provider-proxmox__POST_cluster_sdn_zones__500_nested_param_error.json",
        "/cluster/sdn/zones",
        "POST",
        data={"zone": "z1", "type": "simple"},
        kind="envelope",
    ),
]


def _type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _groups(data: Any) -> dict[str, dict[str, str]]:
    """Key → value type per group of items (by ``type`` for resources, ``current`` apart)."""
    items = data if isinstance(data, list) else [data]
    out: dict[str, dict[str, str]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if "id" in item and "type" in item:
            group = str(item["type"])
        elif item.get("name") == "current" and "digest" in item:
            group = "current"
        else:
            group = "*"
        out.setdefault(group, {}).update({k: _type(v) for k, v in item.items()})
    return out


def _nested(fixture: Any, sim: Any, where: str, problems: list[str]) -> None:
    """Object-valued keys (``cap``, ``cpuinfo``, ``memory`` …): their keys must be there too."""
    if isinstance(fixture, dict) and isinstance(sim, dict):
        for k, v in fixture.items():
            if isinstance(v, dict) and isinstance(sim.get(k), dict) and k not in ("blockstat", "nics"):
                missing = set(v) - set(sim[k])
                if missing:
                    problems.append(f"{where}.{k}: missing {sorted(missing)}")


def compare(case: Case, fixture: Any, sim: Any) -> list[str]:
    problems: list[str] = []
    fg, sg = _groups(fixture), _groups(sim)
    for group, fkeys in fg.items():
        skeys = sg.get(group)
        if skeys is None:
            problems.append(f"group {group!r} absent from the simulator's answer")
            continue
        missing = set(fkeys) - set(skeys) - case.optional
        extra = set(skeys) - set(fkeys) - case.optional - case.newer
        types = {k for k in set(fkeys) & set(skeys) if fkeys[k] != skeys[k]} - case.types
        if missing:
            problems.append(f"[{group}] keys missing: {sorted(missing)}")
        if extra:
            problems.append(f"[{group}] unexpected keys: {sorted(extra)}")
        if types:
            problems.append(f"[{group}] type differs: {[(k, fkeys[k], skeys[k]) for k in sorted(types)]}")
    if isinstance(fixture, dict):
        _nested(fixture, sim, "data", problems)
    return problems


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fixtures_dir() -> Path:
    if not (FIXTURES / "INDEX.md").is_file():
        pytest.skip("../shared/pve-fixtures is not present beside the repository")
    return FIXTURES


def test_every_fixture_has_a_case(fixtures_dir: Path) -> None:
    on_disk = {p.name for p in fixtures_dir.glob("*.json")}
    assert on_disk == {c.fixture for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.fixture.removesuffix(".json") for c in CASES])
async def test_fixture(case: Case, fixtures_dir: Path, sim: RunningSimulator, admin: Api) -> None:
    recorded = _load(case.fixture)
    if case.kind in ("vzdump-status", "vzdump-log"):
        upid = await admin.data("POST", "/nodes/pve1/vzdump", data={"vmid": "100", "storage": "nfs-shared"})
        await admin.wait_task(upid)
        sub = "status" if case.kind == "vzdump-status" else "log"
        r = await admin.get(f"/nodes/pve1/tasks/{upid}/{sub}", **({"limit": "0"} if sub == "log" else {}))
        body = r.json()
        assert compare(case, recorded["data"], body["data"]) == []
        if sub == "log":
            lines = [x["t"] for x in body["data"]]
            assert lines[0].startswith("INFO: starting new backup job: vzdump 100 ")
            assert lines[-1] == recorded["data"][-1]["t"] == "TASK OK"
            assert "INFO: Backup job finished successfully" in lines
        return
    if case.data == {"login": "1"}:
        r = await admin.post(case.path, data={"username": sim.user, "password": sim.password})
    else:
        r = await admin.client.request(case.method, sim.url + case.path, data=case.data)
    body = r.json()
    if case.kind == "error":
        status = int(re.search(r"__(\d{3})", case.fixture).group(1))  # type: ignore[union-attr]
        assert r.status_code == status
        assert set(recorded) <= set(body) and set(body) - set(recorded) <= {"message", "errors"}
        if "errors" in recorded:
            assert set(body["errors"]) == set(recorded["errors"])
        return
    if case.kind == "envelope":
        assert r.status_code >= 500 and set(body) == set(recorded) == {"data", "message"}
        return
    assert r.status_code == 200, r.text
    if case.kind == "scalar":
        assert _type(body["data"]) == _type(recorded["data"])
        if recorded["data"] == "OK":
            assert body["data"] == "OK"
        return
    if case.kind == "upid":
        # both must parse with PVE's own decoder (a ValueError fails the test) and name the same task type
        assert parse_upid(body["data"]).type == parse_upid(recorded["data"]).type == case.notes["type"]
        return
    assert compare(case, recorded["data"], body["data"]) == []
