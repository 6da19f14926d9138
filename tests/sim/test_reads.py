"""The host, cluster, access and firewall reads of issue 12, over real HTTPS against the simulator.

Each test checks what a client relies on: that the answers describe one consistent cluster (the disks LVM
reports are the disks listed, the thin pool is the ``local-lvm`` storage, the users are the ones that log
in), and that errors carry PVE's own texts (cited in the handlers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pvemcp.dialect.model import load_spec
from pvemcp.sim import RunningSimulator, running_simulator
from pvemcp.sim.fwconfig import build_firewall
from pvemcp.sim.hostinfo import build_hosts
from pvemcp.sim.seed import build_cluster
from pvemcp.sim.state import Guest

from .conftest import Api, _client, token_header

pytestmark = pytest.mark.anyio


@pytest.fixture
async def privsep(sim: RunningSimulator) -> AsyncIterator[Api]:
    """root@pam's privilege-separated token: authenticated, but without a single privilege."""
    token = sim.sim.auth.admin.tokens["privsep"]
    async for api in _client(sim, token_header(f"root@pam!{token.tokenid}", token.secret)):
        yield api


def _error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["message"]


# ---- node: disks ------------------------------------------------------------------------------------------


async def test_disks_lvm_and_thin_pool_describe_the_local_lvm_storage(shared_admin: Api) -> None:
    disks = await shared_admin.data("GET", "/nodes/pve1/disks/list", params={"include-partitions": 1})
    by_path = {d["devpath"]: d for d in disks}
    vgs = (await shared_admin.data("GET", "/nodes/pve1/disks/lvm"))["children"]
    assert [vg["name"] for vg in vgs] == ["pve"]
    pv = vgs[0]["children"][0]["name"]
    assert by_path[pv]["used"] == "LVM" and by_path[pv]["type"] == "partition"
    assert by_path[by_path[pv]["parent"]]["used"] == "partitions"
    assert vgs[0]["free"] < vgs[0]["size"] <= by_path[pv]["size"]

    pools = await shared_admin.data("GET", "/nodes/pve1/disks/lvmthin")
    assert [(p["vg"], p["lv"]) for p in pools] == [("pve", "data")]
    storage = await shared_admin.data("GET", "/nodes/pve1/storage/local-lvm/status")
    assert (pools[0]["lv_size"], pools[0]["used"]) == (storage["total"], storage["used"])
    assert 0 < pools[0]["metadata_used"] < pools[0]["metadata_size"]


async def test_thin_pool_use_follows_new_disks(sim: RunningSimulator, admin: Api) -> None:
    before = (await admin.data("GET", "/nodes/pve1/disks/lvmthin"))[0]["used"]
    upid = await admin.data("POST", "/nodes/pve1/qemu", data={"vmid": "700", "scsi0": "local-lvm:16"})
    assert (await admin.wait_task(upid))["exitstatus"] == "OK"
    after = (await admin.data("GET", "/nodes/pve1/disks/lvmthin"))[0]["used"]
    assert after - before == 16 * 1024**3


async def test_disk_list_filters_and_smart_toggle(shared_admin: Api) -> None:
    disks = await shared_admin.data("GET", "/nodes/pve1/disks/list")
    assert all("parent" not in d for d in disks), "partitions only with include-partitions"
    boot = next(d for d in disks if d["devpath"] == "/dev/nvme0n1")
    assert boot["used"] == "BIOS boot" and boot["gpt"] == 1 and boot["health"] == "PASSED"
    assert isinstance(boot["wearout"], int)
    unused = await shared_admin.data("GET", "/nodes/pve1/disks/list", params={"type": "unused"})
    assert unused and [d["devpath"] for d in unused] == [d["devpath"] for d in disks if "used" not in d]
    assert all(d["type"] == "hdd" and d["wearout"] == "N/A" for d in unused)
    quick = await shared_admin.data("GET", "/nodes/pve1/disks/list", params={"skipsmart": 1})
    assert {(d["health"], d["wearout"]) for d in quick} == {("UNKNOWN", "N/A")}


async def test_smart_data_per_disk_kind(shared_admin: Api) -> None:
    nvme = await shared_admin.data("GET", "/nodes/pve1/disks/smart", params={"disk": "/dev/nvme0n1"})
    assert nvme["type"] == "text" and "Percentage Used:" in nvme["text"]
    disks = await shared_admin.data("GET", "/nodes/pve1/disks/list")
    assert nvme["wearout"] == next(d["wearout"] for d in disks if d["devpath"] == "/dev/nvme0n1")
    assert await shared_admin.data(
        "GET", "/nodes/pve1/disks/smart", params={"disk": "/dev/nvme0n1p3", "healthonly": 1}
    ) == {"health": "PASSED"}
    hdds = [d["devpath"] for d in disks if d["type"] == "hdd"]
    assert hdds, "the seeded pve1 has spare SATA disks"
    for disk in hdds:
        ata = await shared_admin.data("GET", "/nodes/pve1/disks/smart", params={"disk": disk})
        assert ata["type"] == "ata" and any(a["name"] == "Power_On_Hours" for a in ata["attributes"])
    r = await shared_admin.get("/nodes/pve1/disks/smart", disk="/dev/sdz")
    assert _error(r) == (500, "not a valid block device\n")


async def test_no_zfs_pool_on_an_lvm_install(shared_admin: Api) -> None:
    assert await shared_admin.data("GET", "/nodes/pve2/disks/zfs") == []
    r = await shared_admin.get("/nodes/pve2/disks/zfs/tank")
    assert _error(r) == (500, "command '/sbin/zpool status -P tank' failed: exit code 1\n")


async def test_same_seed_same_hardware_and_nodes_differ(sim: RunningSimulator, admin: Api) -> None:
    serials = {}
    for node in ("pve1", "pve2", "pve3"):
        disks = await admin.data("GET", f"/nodes/{node}/disks/list")
        serials[node] = [d["serial"] for d in disks]
    assert len({s[0] for s in serials.values()}) == 3, "every node has its own boot disk"
    rebuilt = build_hosts(build_cluster(seed=1), seed=1)
    assert [d.serial for d in rebuilt["pve1"].disks] == serials["pve1"]


# ---- node: services, updates, resolver, clock ---------------------------------------------------------------


async def test_services_cover_pves_service_list(shared_admin: Api) -> None:
    spec = load_spec().operation("GET /nodes/{node}/services/{service}/state")
    known = spec.input_schema["properties"]["service"]["enum"]
    listed = await shared_admin.data("GET", "/nodes/pve2/services")
    assert [s["service"] for s in listed] == sorted(known)
    by_name = {s["service"]: s for s in listed}
    assert by_name["pveproxy"]["state"] == "running" and by_name["corosync"]["active-state"] == "active"
    assert by_name["systemd-timesyncd"]["unit-state"] == "not-found", "chrony replaces timesyncd"
    for name in ("pvedaemon", "syslog"):
        one = await shared_admin.data("GET", f"/nodes/pve2/services/{name}/state")
        assert one == by_name[name]
    r = await shared_admin.get("/nodes/pve2/services/nginx/state")
    assert r.status_code == 400 and "service" in r.json()["errors"]


async def test_pending_updates_need_sys_modify(admin: Api, auditor: Api) -> None:
    updates = await admin.data("GET", "/nodes/pve1/apt/update")
    assert updates and all(u["Version"] != u["OldVersion"] for u in updates)
    assert {u["Origin"] for u in updates} <= {"Proxmox", "Debian"}
    r = await auditor.get("/nodes/pve1/apt/update")
    assert _error(r) == (403, "Permission check failed (/nodes/pve1, Sys.Modify)\n")
    assert (await auditor.get("/nodes/pve1/services")).status_code == 200


async def test_dns_uses_the_node_gateway_and_time_follows_the_clock(sim: RunningSimulator, admin: Api) -> None:
    network = await admin.data("GET", "/nodes/pve2/network")
    gateway = next(n["gateway"] for n in network if n.get("gateway"))
    dns = await admin.data("GET", "/nodes/pve2/dns")
    assert dns["dns1"] == gateway and dns["search"]
    before = await admin.data("GET", "/nodes/pve2/time")
    assert before["timezone"] == "UTC" and before["localtime"] == before["time"]
    sim.advance_clock(3600)
    after = await admin.data("GET", "/nodes/pve2/time")
    assert after["time"] - before["time"] >= 3600


async def test_host_reads_of_an_offline_node_fail_like_the_proxy(sim: RunningSimulator, admin: Api) -> None:
    sim.faults.add("offline_node", node="pve3")
    for path in ("/nodes/pve3/disks/list", "/nodes/pve3/services", "/nodes/pve3/dns"):
        assert (await admin.get(path)).status_code == 595, path


# ---- cluster --------------------------------------------------------------------------------------------------


async def test_cluster_log_records_tasks_newest_first(sim: RunningSimulator, admin: Api, auditor: Api) -> None:
    upid = await admin.data("POST", "/nodes/pve1/qemu/100/status/suspend")
    log = await admin.data("GET", "/cluster/log", params={"max": 3})
    assert len(log) == 3
    assert log[0]["msg"] == f"starting task {upid}" and log[0]["user"] == sim.token_id
    assert [e["uid"] for e in log] == sorted((e["uid"] for e in log), reverse=True)
    assert all(e["id"] == f"{e['uid']}:{e['node']}" for e in log)
    await admin.wait_task(upid)
    newest = (await admin.data("GET", "/cluster/log", params={"max": 1}))[0]
    assert newest["msg"] == f"end task {upid} OK"
    now = int(sim.state.clock.now())
    for i in range(20):  # more history than pmxcfs hands out by default
        sim.sim.tasks.add_finished("pve2", "aptupdate", "", "root@pam", now - 7200 - i * 60, 5, [])
    assert len(await admin.data("GET", "/cluster/log")) == 50
    assert len(await admin.data("GET", "/cluster/log", params={"max": 60})) == 60
    # without Sys.Syslog only the caller's own entries: the auditor has started nothing
    assert await auditor.data("GET", "/cluster/log") == []


async def test_cluster_log_marks_failed_tasks_as_errors(sim: RunningSimulator, admin: Api) -> None:
    now = int(sim.state.clock.now())
    task = sim.sim.tasks.add_finished("pve2", "qmstart", "105", "root@pam", now - 5, 2, [], "start failed: boom")
    end, start = await admin.data("GET", "/cluster/log", params={"max": 2})
    assert (end["msg"], end["pri"]) == (f"end task {task.upid} start failed: boom", 3)
    assert (start["msg"], start["pri"], start["pid"]) == (f"starting task {task.upid}", 6, end["pid"])


async def test_cluster_options_by_privilege(admin: Api, auditor: Api, privsep: Api) -> None:
    full = await admin.data("GET", "/cluster/options")
    assert full["keyboard"] == "en-us" and "prod" in full["allowed-tags"]
    assert await auditor.data("GET", "/cluster/options") == full
    bare = await privsep.data("GET", "/cluster/options")
    assert bare == {"console": full["console"], "allowed-tags": []}


async def test_ha_status_tracks_quorum(sim: RunningSimulator, admin: Api) -> None:
    assert await admin.data("GET", "/cluster/ha/resources") == []
    assert await admin.data("GET", "/cluster/ha/resources", params={"type": "vm"}) == []
    status = await admin.data("GET", "/cluster/ha/status/current")
    assert status == [{"id": "quorum", "type": "quorum", "node": "pve1", "status": "OK", "quorate": 1}]
    sim.faults.add("offline_node", node="pve2")
    sim.faults.add("offline_node", node="pve3")
    lost = await admin.data("GET", "/cluster/ha/status/current")
    assert (lost[0]["status"], lost[0]["quorate"]) == ("No quorum on node 'pve1'!", 0)


async def test_unconfigured_subsystems(shared_admin: Api) -> None:
    assert await shared_admin.data("GET", "/cluster/sdn/zones") == []
    assert await shared_admin.data("GET", "/cluster/replication") == []
    r = await shared_admin.get("/cluster/ceph/status")
    assert _error(r) == (500, "binary not installed: /usr/bin/ceph-mon\n")


# ---- access -----------------------------------------------------------------------------------------------------


async def test_users_are_the_identities_that_log_in(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.get("/access/users", full=1)
    users = {u["userid"]: u for u in r.json()["data"]}
    assert set(users) == {sim.user, sim.readonly_user}
    for token_id in (sim.token_id, sim.readonly_token_id):
        userid, tokenid = token_id.split("!")
        assert tokenid in [t["tokenid"] for t in users[userid]["tokens"]]
    assert users["root@pam"]["realm-type"] == "pam" and users[sim.readonly_user]["realm-type"] == "pve"
    for secret in (sim.token_secret, sim.readonly_token_secret, sim.password, sim.readonly_password):
        assert secret not in r.text
    brief = await admin.data("GET", "/access/users")
    assert all("tokens" not in u for u in brief)
    sim.sim.auth.auditor.enabled = False
    assert [u["userid"] for u in await admin.data("GET", "/access/users", params={"enabled": 1})] == ["root@pam"]


async def test_acl_grants_what_the_users_can_do(sim: RunningSimulator, auditor: Api, privsep: Api) -> None:
    acl = await auditor.data("GET", "/access/acl")
    assert acl == [{"path": "/", "type": "user", "ugid": sim.readonly_user, "roleid": "PVEAuditor", "propagate": 1}]
    # the auditor indeed cannot change anything, the privilege-separated token sees nothing at all
    assert (await auditor.put("/nodes/pve1/qemu/100/config", data={"description": "x"})).status_code == 403
    assert await privsep.data("GET", "/access/acl") == []
    assert await privsep.data("GET", "/access/users") == []


# ---- firewall ---------------------------------------------------------------------------------------------------

_OPTS = "/nodes/pve1/qemu/100/firewall/options"
_RULES = "/nodes/pve1/qemu/100/firewall/rules"
_MODIFIED = "detected modified configuration - file changed by other user? Try again.\n"


async def test_cluster_rules_have_positions_and_one_digest(shared_admin: Api) -> None:
    rules = await shared_admin.data("GET", "/cluster/firewall/rules")
    assert [r["pos"] for r in rules] == list(range(len(rules)))
    assert len({r["digest"] for r in rules}) == 1
    assert {r["macro"] for r in rules if "macro" in r} >= {"SSH"}
    assert all(r["ipversion"] == 4 for r in rules if "source" in r)


async def test_guest_options_edit_with_digest(admin: Api) -> None:
    before = await admin.data("GET", _OPTS)
    assert before["enable"] == 1
    r = await admin.put(_OPTS, data={"policy_out": "REJECT", "digest": "0" * 40})
    assert _error(r) == (500, _MODIFIED)
    assert (await admin.put(_OPTS, data={"policy_out": "REJECT", "digest": before["digest"]})).status_code == 200
    after = await admin.data("GET", _OPTS)
    assert after["policy_out"] == "REJECT" and after["digest"] != before["digest"]
    await admin.data("PUT", _OPTS, data={"delete": "policy_out", "enable": "0"})
    final = await admin.data("GET", _OPTS)
    assert {k: v for k, v in final.items() if k != "digest"} == {"enable": 0, "policy_in": before["policy_in"]}
    r = await admin.put(_OPTS, data={"delete": "nonsense"})
    assert r.status_code == 400 and r.json()["errors"] == {"delete": "no such option 'nonsense'"}


async def test_guest_rules_create_move_edit_delete(admin: Api) -> None:
    start = await admin.data("GET", _RULES)
    await admin.data("POST", _RULES, data={"type": "in", "action": "ACCEPT", "macro": "smtp", "source": "192.0.2.0/24"})
    rules = await admin.data("GET", _RULES)
    new = rules[0]
    assert len(rules) == len(start) + 1
    assert (new["macro"], new["enable"], new["ipversion"]) == ("SMTP", 0, 4), "inserted first, disabled"
    assert await admin.data("GET", f"{_RULES}/0") == new

    stale = new["digest"]
    # moveto puts the rule in front of the one at that position: from 0 to 2 lands it at 1
    await admin.data("PUT", f"{_RULES}/0", data={"moveto": "2", "digest": stale})
    moved = await admin.data("GET", _RULES)
    assert [r.get("macro") for r in moved] == [start[0]["macro"], "SMTP", *[r["macro"] for r in start[1:]]]
    r = await admin.delete(f"{_RULES}/1", digest=stale)
    assert _error(r) == (500, _MODIFIED)

    await admin.data("PUT", f"{_RULES}/1", data={"enable": "1", "comment": "relay", "delete": "source"})
    edited = (await admin.data("GET", _RULES))[1]
    assert (edited["enable"], edited["comment"]) == (1, "relay")
    assert "source" not in edited and "ipversion" not in edited

    await admin.data("PUT", f"{_RULES}/1", data={"moveto": "99"})
    assert (await admin.data("GET", _RULES))[-1]["macro"] == "SMTP", "beyond the end means last"
    await admin.data("DELETE", f"{_RULES}/{len(start)}")
    assert [r["macro"] for r in await admin.data("GET", _RULES)] == [r["macro"] for r in start]
    r = await admin.get(f"{_RULES}/9")
    assert _error(r) == (500, "no rule at position 9\n")


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"type": "in", "action": "ALLOW"}, {"action": "unknown action 'ALLOW'"}),
        ({"type": "forward", "action": "ACCEPT"}, {"type": "invalid rule type 'forward' for rule_env 'vm'"}),
        (
            {"type": "in", "action": "ACCEPT", "iface": "eth0"},
            {"iface": "value does not match the regex pattern 'net\\d+'"},
        ),
        ({"type": "in", "action": "ACCEPT", "macro": "Nope"}, {"macro": "unknown macro 'Nope'"}),
        (
            {"type": "in", "action": "ACCEPT", "dport": "22"},
            {"proto": "missing property - 'dport' requires this property"},
        ),
        ({"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "70000"}, {"dport": "invalid port '70000'"}),
        (
            {"type": "in", "action": "ACCEPT", "proto": "icmp", "sport": "1"},
            {"sport": "protocol 'icmp' does not support ports"},
        ),
        (
            {"type": "in", "action": "ACCEPT", "proto": "tcp", "icmp-type": "echo-request"},
            {"proto": "missing property - 'icmp-type' requires this property"},
        ),
        (
            {"type": "in", "action": "ACCEPT", "proto": "icmp", "icmp-type": "ping"},
            {"icmp-type": "invalid icmp-type value 'ping'"},
        ),
        (
            {"type": "in", "action": "ACCEPT", "proto": "icmp", "icmp-type": "neighbor-solicitation"},
            {"icmp-type": "invalid icmp-type 'neighbor-solicitation' for proto 'icmp'"},
        ),
        (
            {"type": "in", "action": "ACCEPT", "proto": "icmp", "dport": "echo-request,22"},
            {"dport": "ICMP ports not allowed in port range"},
        ),
        ({"type": "in", "action": "ACCEPT", "source": "office"}, {"source": "no such alias 'office'"}),
        (
            {"type": "in", "action": "ACCEPT", "source": "10.0.0.1,fd00::1"},
            {"source": "detected mixed ipv4/ipv6 addresses in address list '10.0.0.1,fd00::1'"},
        ),
    ],
)
async def test_rule_checks_reject_and_keep_the_rules(admin: Api, data: dict[str, str], errors: dict[str, str]) -> None:
    before = await admin.data("GET", _RULES)
    r = await admin.post(_RULES, data=data)
    assert (r.status_code, r.json()["errors"]) == (400, errors)
    assert await admin.data("GET", _RULES) == before


async def test_icmp_rules_take_type_names(admin: Api) -> None:
    await admin.data(
        "POST", _RULES, data={"type": "in", "action": "ACCEPT", "proto": "icmp", "icmp-type": "echo-request"}
    )
    await admin.data(
        "POST", _RULES, data={"type": "in", "action": "ACCEPT", "proto": "ipv6-icmp", "dport": "echo-request"}
    )
    v6, v4 = (await admin.data("GET", _RULES))[:2]
    assert (v4["icmp-type"], v4["ipversion"]) == ("echo-request", 4)
    assert (v6["dport"], v6["ipversion"]) == ("echo-request", 6)


async def test_required_rule_properties_cannot_be_deleted(admin: Api) -> None:
    r = await admin.put(f"{_RULES}/0", data={"delete": "action"})
    assert r.status_code == 400 and r.json()["errors"] == {"delete": "unable to delete required property 'action'"}


async def test_guest_firewall_permissions_and_quorum(sim: RunningSimulator, admin: Api, auditor: Api) -> None:
    assert (await auditor.get(_RULES)).status_code == 200
    r = await auditor.post(_RULES, data={"type": "in", "action": "DROP"})
    assert _error(r) == (403, "Permission check failed (/vms/100, VM.Config.Network)\n")
    sim.faults.add("offline_node", node="pve2")
    sim.faults.add("offline_node", node="pve3")
    r = await admin.post(_RULES, data={"type": "in", "action": "DROP"})
    assert _error(r) == (500, "cfs-lock 'firewall-vm-100' error: no quorum!\n")


async def test_firewall_config_is_per_vmid_and_goes_with_the_guest(sim: RunningSimulator, admin: Api) -> None:
    # the .fw file is found by VMID alone, whatever node or guest type the path names
    ct = await admin.data("GET", "/nodes/pve1/lxc/100/firewall/rules")
    assert ct == await admin.data("GET", _RULES)
    assert await admin.data("GET", "/nodes/pve1/qemu/105/firewall/rules") == []
    await admin.data("POST", "/nodes/pve3/qemu/105/firewall/rules", data={"type": "out", "action": "DROP"})
    assert len(await admin.data("GET", "/nodes/pve3/qemu/105/firewall/rules")) == 1
    upid = await admin.data("DELETE", "/nodes/pve3/qemu/105")
    assert (await admin.wait_task(upid))["exitstatus"] == "OK"
    assert await admin.data("GET", "/nodes/pve3/qemu/105/firewall/rules") == []


async def test_a_single_node_runs_no_corosync() -> None:
    async with running_simulator(seed=3, nodes=1, guests=2, task_speed=0.0) as one:
        async for api in _client(one, token_header(one.token_id, one.token_secret)):
            corosync = await api.data("GET", "/nodes/pve1/services/corosync/state")
            assert (corosync["active-state"], corosync["state"]) == ("inactive", "dead")
            status = await api.data("GET", "/cluster/ha/status/current")
            assert [(s["node"], s["quorate"]) for s in status] == [("pve1", 1)]


def test_a_clone_takes_a_copy_of_the_firewall_config() -> None:
    state = build_cluster(seed=1)
    store = build_firewall(state)
    clone = Guest(vmid=500, type="qemu", node="pve1", config={"name": "web-03"})
    state.guests[500] = clone
    store.clone_guest_conf(state, 100, clone)
    copied = store.guest_conf(state, 500)
    assert (copied.options, copied.rules) == (store.guest_conf(state, 100).options, store.guest_conf(state, 100).rules)
    copied.rules[0]["comment"] = "only on the clone"
    assert "comment" not in store.guest_conf(state, 100).rules[0]
    store.clone_guest_conf(state, 105, Guest(vmid=501, type="qemu", node="pve1", config={}))
    assert 501 not in store.guests, "a guest without .fw file gives its clone none"


async def test_a_clone_starts_with_a_copy_of_the_source_firewall(admin: Api) -> None:
    # qemu-server API2/Qemu.pm clone_vm: clone_vmfw_conf($vmid, $newid) once the new config exists
    rule = {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22"}
    await admin.data("POST", "/nodes/pve1/qemu/106/firewall/rules", data=rule)
    source = await admin.data("GET", "/nodes/pve1/qemu/106/firewall/rules")
    upid = await admin.data("POST", "/nodes/pve1/qemu/106/clone", data={"newid": "301", "target": "pve2"})
    assert (await admin.wait_task(upid))["exitstatus"] == "OK"
    clone = await admin.data("GET", "/nodes/pve2/qemu/301/firewall/rules")
    assert [(r["type"], r["action"], r.get("dport")) for r in clone] == [("in", "ACCEPT", "22")]
    assert [r["pos"] for r in clone] == [r["pos"] for r in source]
