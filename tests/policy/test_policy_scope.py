"""Scope: per-guest checks, new guests, nodes, batches, and every target of a generic call."""

from __future__ import annotations

from typing import Any

import pytest

from pvemcp.core.policy.scope import (
    Scope,
    check_new_guest,
    check_new_vmid,
    check_node,
    check_target,
    check_unlisted_guest,
    parse_tags,
)
from pvemcp.core.policy.targets import (
    CallTargets,
    backup_selection,
    check_call,
    extract_targets,
    merge_targets,
)
from pvemcp.core.pve.resolve import GuestRef, guest_from_resource
from pvemcp.dialect.tags import tag_list

VMIDS = Scope(
    vmid_ranges=(
        (100, 199),
        (500, 500),
    )
)


def g(vmid: int, node: str = "pve1", pool: str | None = None, tags: Any = (), name: str | None = None) -> GuestRef:
    """A guest as the guest list reports it (tags parsed as from ``/cluster/resources``)."""
    return GuestRef(
        vmid=vmid, node=node, type="qemu", name=name, status="running", template=False, tags=tag_list(tags), pool=pool
    )


# --- scope --------------------------------------------------------------------------------


def test_unrestricted_scope_allows_everything() -> None:
    s = Scope()
    assert s.unrestricted and s.describe() == "unrestricted"
    assert check_target(s, g(1, node="x")) is None
    assert check_new_vmid(s, 999999) is None
    assert check_node(s, "anything") is None


@pytest.mark.parametrize(
    ("vmid", "ok"), [(99, False), (100, True), (150, True), (199, True), (200, False), (500, True)]
)
def test_vmid_ranges_are_inclusive(vmid: int, ok: bool) -> None:
    v = check_target(VMIDS, g(vmid))
    assert (v is None) is ok
    assert (check_unlisted_guest(VMIDS, vmid) is None) is ok  # a guest known only by its vmid: the ranges alone
    if v is not None:
        assert v.rules == ("vmid",)
        assert f"guest {vmid}" in v.message and "100-199, 500" in v.message


def test_tags_any_of_case_insensitive() -> None:
    s = Scope(tags=frozenset({"agent"}))
    assert check_target(s, g(1, tags="prod;Agent")) is None
    assert check_target(s, g(1, tags=["AGENT"])) is None
    v = check_target(s, g(7, tags="prod;web", name="db1"))
    assert v is not None and v.rules == ("tag",)
    assert "guest 7 (db1) on node pve1" in v.message and "agent" in v.message and "prod, web" in v.message
    v = check_target(s, g(8))
    assert v is not None and "no tags" in v.message


def test_pools() -> None:
    s = Scope(pools=frozenset({"agents"}))
    assert check_target(s, g(1, pool="agents")) is None
    v = check_target(s, g(1, pool="prod"))
    assert v is not None and v.rules == ("pool",) and "pool prod" in v.message
    v = check_target(s, g(1))
    assert v is not None and "in no pool" in v.message


def test_nodes() -> None:
    s = Scope(nodes=frozenset({"pve1"}))
    assert check_target(s, g(1, node="pve1")) is None
    v = check_target(s, g(1, node="pve2"))
    assert v is not None and v.rules == ("node",) and v.node == "pve2"
    assert check_node(s, "pve1") is None
    v = check_node(s, "pve3")
    assert v is not None and "node pve3" in v.message


def test_all_dimensions_must_hold_and_all_failures_are_named() -> None:
    s = Scope(nodes=frozenset({"pve1"}), vmid_ranges=((100, 199),), pools=frozenset({"a"}), tags=frozenset({"agent"}))
    assert check_target(s, g(150, node="pve1", pool="a", tags="agent")) is None
    v = check_target(s, g(250, node="pve2", pool="b", tags="x"))
    assert v is not None
    assert v.rules == ("node", "vmid", "pool", "tag")
    assert str(v) == v.message and v.message.endswith(".")


def test_empty_restriction_allows_nothing() -> None:
    s = Scope(nodes=frozenset(), vmid_ranges=(), tags=frozenset())
    assert not s.unrestricted
    assert check_target(s, g(100, tags="agent")) is not None
    assert check_new_vmid(s, 100) is not None


def test_new_vmid_and_new_guest() -> None:
    v = check_new_vmid(VMIDS, 9000)
    assert v is not None and v.subject == "new guest 9000" and v.rules == ("vmid",)
    assert check_new_vmid(VMIDS, 120) is None
    s = Scope(
        nodes=frozenset({"pve1"}), vmid_ranges=((100, 199),), pools=frozenset({"agents"}), tags=frozenset({"agent"})
    )
    assert check_new_guest(s, 150, node="pve1", pool="agents", tags="agent") is None
    v = check_new_guest(s, 150, node="pve2", pool=None, tags=None)
    assert v is not None and v.rules == ("node", "pool", "tag")


def test_the_guest_record_from_cluster_resources() -> None:
    f = guest_from_resource(
        {"vmid": "105", "node": "pve2", "pool": "", "tags": "a;B", "name": "web", "type": "qemu", "status": "running"}
    )
    assert f is not None
    assert (f.vmid, f.node, f.pool, f.name, f.type) == (105, "pve2", None, "web", "qemu")
    assert f.tag_set == frozenset({"a", "b"})  # case-folded, as PVE's get_unique_tags stores them
    assert f.label() == "guest 105 (web) on node pve2"
    assert parse_tags(None) == frozenset()
    assert parse_tags("x y,z;w") == frozenset({"x", "y", "z", "w"})


def test_invalid_scope_ranges() -> None:
    with pytest.raises(ValueError, match="empty"):
        Scope(vmid_ranges=((200, 100),))
    with pytest.raises(ValueError, match="integers"):
        Scope(vmid_ranges=(("1", 2),))  # type: ignore[arg-type]


# --- targets of a call --------------------------------------------------------------------

STOP = "/nodes/{node}/qemu/{vmid}/status/stop"
CLONE = "/nodes/{node}/qemu/{vmid}/clone"


def test_extract_path_guest_and_node() -> None:
    t = extract_targets("POST", STOP, {"node": "pve1", "vmid": 100})
    assert t.guests == {100} and t.nodes == {"pve1"} and not t.new_guests and not t.unresolved


def test_extract_clone() -> None:
    t = extract_targets("POST", CLONE, {"node": "pve1", "vmid": "100", "newid": 9000, "target": "pve2", "pool": "p"})
    assert t.guests == {100} and t.new_guests == {9000} and t.nodes == {"pve1", "pve2"}
    assert t.new_guest_node == "pve2" and t.new_guest_pool == "p" and t.clone_of == 100
    t = extract_targets("POST", "/nodes/{node}/lxc/{vmid}/clone", {"node": "pve1", "vmid": 100, "newid": 101})
    assert t.new_guest_node == "pve1"


def test_extract_create_restore() -> None:
    t = extract_targets(
        "POST", "/nodes/{node}/qemu", {"node": "pve1", "vmid": 120, "archive": "x", "force": 1, "tags": "agent"}
    )
    assert (
        t.new_guests == {120}
        and not t.guests
        and t.new_guest_tags == frozenset({"agent"})
        and t.new_guest_node == "pve1"
    )
    assert extract_targets("GET", "/nodes/{node}/qemu", {"node": "pve1"}).new_guests == frozenset()


@pytest.mark.parametrize(
    ("method", "template", "params", "expected"),
    [
        ("POST", "/nodes/{node}/qemu/{vmid}/migrate", {"node": "a", "vmid": 1, "target": "b"}, {"nodes": {"a", "b"}}),
        ("POST", "/nodes/{node}/stopall", {"node": "a"}, {"node_wide": {"a"}}),
        ("POST", "/nodes/{node}/stopall", {"node": "a", "vms": "101,102"}, {"guests": {101, 102}}),
        ("POST", "/nodes/{node}/startall", {"node": "a", "vms": "7"}, {"guests": {7}}),
        ("POST", "/nodes/{node}/migrateall", {"node": "a", "target": "b"}, {"node_wide": {"a"}, "nodes": {"a", "b"}}),
        ("POST", "/nodes/{node}/status", {"node": "a", "command": "reboot"}, {"node_wide": {"a"}}),
        ("GET", "/nodes/{node}/status", {"node": "a"}, {"nodes": {"a"}, "node_wide": set()}),
        ("POST", "/cluster/bulk-action/guest/shutdown", {}, {"cluster_wide": True}),
        (
            "POST",
            "/cluster/bulk-action/guest/migrate",
            {"vms": [1, 2], "target": "b"},
            {"guests": {1, 2}, "nodes": {"b"}},
        ),
        ("POST", "/nodes/{node}/vzdump", {"node": "a", "vmid": "100,101"}, {"guests": {100, 101}}),
        ("POST", "/nodes/{node}/vzdump", {"node": "a", "all": 1}, {"node_wide": {"a"}}),
        ("POST", "/nodes/{node}/vzdump", {"node": "a", "pool": "p"}, {"pools": {"p"}}),
        ("POST", "/nodes/{node}/vzdump", {"node": "a", "stop": 1}, {"node_wide": {"a"}}),
        ("POST", "/cluster/backup", {"all": 1, "schedule": "daily"}, {"cluster_wide": True}),
        ("PUT", "/cluster/backup/{id}", {"id": "j", "all": 1, "node": "a"}, {"node_wide": {"a"}, "nodes": {"a"}}),
        ("POST", "/cluster/ha/resources", {"sid": "vm:105"}, {"guests": {105}}),
        (
            "POST",
            "/cluster/ha/resources/{sid}/relocate",
            {"sid": "ct:106", "node": "b"},
            {"guests": {106}, "nodes": {"b"}},
        ),
        ("PUT", "/cluster/ha/rules/{rule}", {"rule": "r", "resources": "vm:1,ct:2"}, {"guests": {1, 2}}),
        ("PUT", "/cluster/replication/{id}", {"id": "100-0"}, {"guests": {100}}),
        ("POST", "/cluster/replication", {"id": "101-1", "target": "b"}, {"guests": {101}, "nodes": {"b"}}),
        ("POST", "/nodes/{node}/replication/{id}/schedule_now", {"node": "a", "id": "102-0"}, {"guests": {102}}),
        ("POST", "/nodes/{node}/qemu/{vmid}/move_disk", {"node": "a", "vmid": 1, "target-vmid": 2}, {"guests": {1, 2}}),
        ("PUT", "/pools/{poolid}", {"poolid": "p", "vms": "5,6"}, {"guests": {5, 6}}),
        ("GET", "/nodes/{node}/tasks", {"node": "a", "vmid": 9}, {"guests": {9}}),
        (
            "POST",
            "/nodes/{node}/storage/{storage}/content/{volume}",
            {"node": "a", "target_node": "b"},
            {"nodes": {"a", "b"}},
        ),
        ("PUT", "/access/acl", {"path": "/", "roles": "Administrator"}, {"cluster_wide": True}),
        ("GET", "/access/acl", {}, {}),
        ("PUT", "/nodes/{node}/disks/wipedisk", {"node": "a", "disk": "/dev/sdb"}, {"node_wide": {"a"}}),
        ("POST", "/nodes/{node}/services/{service}/restart", {"node": "a", "service": "x"}, {"node_wide": {"a"}}),
        ("PUT", "/nodes/{node}/network", {"node": "a"}, {"node_wide": {"a"}}),
        ("POST", "/nodes/{node}/apt/update", {"node": "a"}, {"node_wide": {"a"}}),
        ("POST", "/nodes/{node}/certificates/custom", {"node": "a"}, {"node_wide": {"a"}}),
        ("POST", "/nodes/{node}/ceph/osd", {"node": "a"}, {"cluster_wide": True}),
        ("DELETE", "/cluster/backup/{id}", {"id": "j"}, {"backup_jobs": {"j"}}),
        ("PUT", "/cluster/backup/{id}", {"id": "j", "enabled": 0}, {"backup_jobs": {"j"}}),
        (
            "DELETE",
            "/nodes/{node}/storage/{storage}/content/{volume}",
            {"node": "a", "storage": "s", "volume": "s:vm-600-disk-0"},
            {"guests": {600}},
        ),
        (
            "GET",
            "/nodes/{node}/storage/{storage}/content/{volume}",
            {"node": "a", "storage": "s", "volume": "nfs:backup/vzdump-lxc-601-2026_01_01-00_00_00.tar.zst"},
            {"guests": {601}},
        ),
        (
            "DELETE",
            "/nodes/{node}/storage/{storage}/prunebackups",
            {"node": "a", "storage": "s"},
            {"cluster_wide": True},
        ),
        (
            "DELETE",
            "/nodes/{node}/storage/{storage}/prunebackups",
            {"node": "a", "storage": "s", "vmid": 7},
            {"guests": {7}},
        ),
        (
            "DELETE",
            "/nodes/{node}/tasks/{upid}",
            {"node": "a", "upid": "UPID:a:00001234:00005678:65000000:qmstart:106:root@pam:"},
            {"guests": {106}},
        ),
        (
            "DELETE",
            "/nodes/{node}/tasks/{upid}",
            {"node": "a", "upid": "UPID:a:00001234:00005678:65000000:srvreload:networking:root@pam:"},
            {"node_wide": {"a"}, "guests": set()},
        ),
    ],
)
def test_extract_targets(method: str, template: str, params: dict[str, Any], expected: dict[str, Any]) -> None:
    t = extract_targets(method, template, params)
    for attr, want in expected.items():
        got = getattr(t, attr)
        assert (got if isinstance(got, bool) else set(got)) == want, attr
    if not expected:
        assert t == CallTargets()


@pytest.mark.parametrize(
    ("method", "template", "params", "guests"),
    [
        (
            "PUT",
            "/nodes/{node}/qemu/{vmid}/config",
            {"node": "a", "vmid": 100, "scsi1": "local-lvm:vm-600-disk-0"},
            {100, 600},
        ),
        (
            "PUT",
            "/nodes/{node}/qemu/{vmid}/config",
            {"node": "a", "vmid": 100, "scsi1": "local:600/vm-600-disk-1.qcow2,size=8G"},
            {100, 600},
        ),
        (
            "PUT",
            "/nodes/{node}/qemu/{vmid}/config",
            {"node": "a", "vmid": 100, "scsi1": "local-lvm:vm-100-disk-3"},
            {100},
        ),
        ("PUT", "/nodes/{node}/qemu/{vmid}/config", {"node": "a", "vmid": 100, "scsi1": "local-lvm:32"}, {100}),
        (
            "PUT",
            "/nodes/{node}/lxc/{vmid}/config",
            {"node": "a", "vmid": 100, "mp0": "tank:subvol-601-disk-0,mp=/x"},
            {100, 601},
        ),
        (
            "POST",
            "/nodes/{node}/qemu",
            {"node": "a", "vmid": 120, "archive": "local:backup/vzdump-qemu-600-2024_01_01-00_00_00.vma.zst"},
            {600},
        ),
        (
            "POST",
            "/nodes/{node}/qemu",
            {"node": "a", "vmid": 120, "archive": "pbs:backup/vm/602/2024-01-01T00:00:00Z"},
            {602},
        ),
        (
            "POST",
            "/nodes/{node}/lxc",
            {"node": "a", "vmid": 120, "ostemplate": "local:vztmpl/debian-12.tar.zst"},
            set(),
        ),
        (
            "POST",
            "/nodes/{node}/lxc",
            {"node": "a", "vmid": 120, "ostemplate": "pbs:backup/ct/603/2024", "restore": 1},
            {603},
        ),
    ],
)
def test_volumes_and_backups_of_other_guests_are_targets(
    method: str, template: str, params: dict[str, Any], guests: set[int]
) -> None:
    assert set(extract_targets(method, template, params).guests) == guests


def test_attaching_a_foreign_disk_is_out_of_scope() -> None:
    s = Scope(tags=frozenset({"agent"}))
    t = extract_targets(
        "PUT", "/nodes/{node}/qemu/{vmid}/config", {"node": "pve1", "vmid": 100, "scsi1": "local-lvm:vm-600-disk-0"}
    )
    assert [v.vmid for v in check_call(s, t, INVENTORY)] == [600]


def test_unreadable_targets_are_reported() -> None:
    t = extract_targets("POST", "/nodes/{node}/stopall", {"node": "a", "vms": "101,abc"})
    assert t.guests == {101} and t.unresolved == ("vms='abc'",)
    t = extract_targets("POST", STOP, {"node": "a", "vmid": "1; rm"})
    assert t.unresolved and not t.guests
    t = extract_targets("POST", "/cluster/ha/resources", {"sid": "fence:x"})
    assert t.unresolved
    v = check_call(VMIDS, t, [])
    assert v and v[0].rules == ("unresolved",)


INVENTORY = [
    g(100, node="pve1", tags="agent", name="a1"),
    g(101, node="pve1", tags="agent", name="a2"),
    g(150, node="pve2", tags="agent"),
    g(600, node="pve1", tags="prod", name="payroll"),
]


def test_check_call_clone_out_of_range_newid_and_foreign_target_node() -> None:
    s = Scope(nodes=frozenset({"pve1"}), vmid_ranges=((100, 199),))
    t = extract_targets("POST", CLONE, {"node": "pve1", "vmid": 100, "newid": 9000, "target": "pve3"})
    v = check_call(s, t, INVENTORY)
    subjects = {x.subject for x in v}
    assert "node pve3" in subjects
    assert any(x.vmid == 9000 and "vmid" in x.rules for x in v)
    ok = extract_targets("POST", CLONE, {"node": "pve1", "vmid": 100, "newid": 120})
    assert check_call(s, ok, INVENTORY) == []


def test_check_call_batch_with_one_foreign_guest() -> None:
    s = Scope(tags=frozenset({"agent"}))
    t = extract_targets("POST", "/cluster/bulk-action/guest/shutdown", {"vms": [100, 101, 600]})
    v = check_call(s, t, INVENTORY)
    assert [x.vmid for x in v] == [600]


def test_check_call_node_wide_action_touches_foreign_guests() -> None:
    s = Scope(tags=frozenset({"agent"}))
    t = extract_targets("POST", "/nodes/{node}/stopall", {"node": "pve1"})
    assert [x.vmid for x in check_call(s, t, INVENTORY)] == [600]
    t2 = extract_targets("POST", "/nodes/{node}/stopall", {"node": "pve2"})
    assert check_call(s, t2, INVENTORY) == []
    everything = extract_targets("POST", "/cluster/bulk-action/guest/suspend", {})
    assert [x.vmid for x in check_call(s, everything, INVENTORY)] == [600]
    pool = extract_targets("POST", "/nodes/{node}/vzdump", {"node": "pve1", "pool": "p"})
    inv = [*INVENTORY, g(700, pool="p")]
    assert [x.vmid for x in check_call(s, pool, inv)] == [700]


def test_check_call_fails_closed_without_facts() -> None:
    s = Scope(tags=frozenset({"agent"}))
    node_wide = extract_targets("POST", "/nodes/{node}/stopall", {"node": "pve1"})
    v = check_call(s, node_wide, None)
    assert v and v[0].rules == ("unknown",)
    ghost = extract_targets("POST", STOP, {"node": "pve1", "vmid": 999})
    v = check_call(s, ghost, INVENTORY)
    assert v and "not found" in v[0].message
    # With a VMID-only scope the VMID alone decides.
    assert check_call(VMIDS, extract_targets("POST", STOP, {"node": "x", "vmid": 120}), None) == []
    assert check_call(VMIDS, extract_targets("POST", STOP, {"node": "x", "vmid": 999}), None)


def test_check_call_restore_over_a_foreign_guest() -> None:
    s = Scope(tags=frozenset({"agent"}))
    t = extract_targets(
        "POST", "/nodes/{node}/qemu", {"node": "pve1", "vmid": 600, "archive": "x", "force": 1, "tags": "agent"}
    )
    v = check_call(s, t, INVENTORY)
    assert any(x.vmid == 600 and "payroll" in x.message for x in v)


def test_check_call_clone_inherits_source_tags() -> None:
    s = Scope(tags=frozenset({"agent"}), vmid_ranges=((100, 199),))
    t = extract_targets("POST", CLONE, {"node": "pve1", "vmid": 100, "newid": 130})
    assert check_call(s, t, INVENTORY) == []
    create = extract_targets("POST", "/nodes/{node}/qemu", {"node": "pve1", "vmid": 131})
    v = check_call(s, create, INVENTORY)
    assert v and v[0].rules == ("tag",)


def test_an_unrestricted_scope_allows_a_call_without_an_inventory() -> None:
    t = extract_targets("POST", STOP, {"node": "pve1", "vmid": 100})
    assert check_call(Scope(), t, None) == []


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"vmid": "100,600", "all": 1}, {"guests": {100, 600}}),  # vmid wins over all (as in PVE)
        ({"pool": "p", "vmid": "100"}, {"pools": {"p"}, "guests": set()}),  # pool wins over vmid
        ({"all": 1}, {"cluster_wide": True}),
        ({"all": 1, "node": "pve1"}, {"node_wide": {"pve1"}, "nodes": {"pve1"}}),
        ({"exclude": "100"}, {"cluster_wide": True}),  # exclude alone means all, minus some
        ({}, {"guests": set(), "cluster_wide": False}),
    ],
)
def test_backup_selection_follows_pve(job: dict[str, Any], expected: dict[str, Any]) -> None:
    t = backup_selection(job)
    for attr, want in expected.items():
        got = getattr(t, attr)
        assert (got if isinstance(got, bool) else set(got)) == want, attr


def test_disabling_a_job_is_about_the_guests_it_selects() -> None:
    s = Scope(tags=frozenset({"agent"}))
    change = extract_targets("PUT", "/cluster/backup/{id}", {"id": "j", "enabled": 0})
    assert change.backup_jobs == {"j"} and check_call(s, change, INVENTORY) == []
    merged = merge_targets(change, backup_selection({"vmid": "100,600"}))
    assert [v.vmid for v in check_call(s, merged, INVENTORY)] == [600]


def test_cluster_wide_needs_unrestricted_nodes() -> None:
    everything = extract_targets("PUT", "/cluster/options", {"keyboard": "de"})
    assert everything.cluster_wide and everything.reach
    inv = [g(100, tags="agent")]
    assert check_call(Scope(tags=frozenset({"agent"})), everything, inv) == []
    v = check_call(Scope(nodes=frozenset({"pve1"})), everything, inv)
    assert v and v[0].subject == "the cluster"
