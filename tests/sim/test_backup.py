"""Backups: vzdump tasks, archive naming, storage content, job errors, backup job CRUD (notes §4.7)."""

from __future__ import annotations

import re
import time

import pytest

from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio

VOLID_RE = re.compile(
    r"^nfs-shared:backup/vzdump-(qemu|lxc)-(\d+)-(\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2})\.(vma|tar)\.zst$"
)


async def test_vzdump_single_guest(sim: RunningSimulator, admin: Api) -> None:
    before = time.gmtime(sim.sim.clock.now())
    r = await admin.post(
        "/nodes/pve1/vzdump",
        data={
            "vmid": "100",
            "storage": "nfs-shared",
            "compress": "zstd",
            "mode": "snapshot",
            "notes-template": "{{guestname}} on {{node}}",
        },
    )
    upid = r.json()["data"]
    assert ":vzdump:100:root@pam!pvemcp:" in upid
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "OK"
    log = await admin.log(upid)
    assert log[0].startswith("INFO: starting new backup job: vzdump 100 --mode snapshot --storage nfs-shared")
    assert "INFO: Starting Backup of VM 100 (qemu)" in log
    assert any(re.match(r"INFO: +\d+% \(", line) for line in log)
    assert log[-2:] == ["INFO: Backup job finished successfully", "TASK OK"]
    content = await admin.data(
        "GET", "/nodes/pve1/storage/nfs-shared/content", params={"content": "backup", "vmid": 100}
    )
    newest = max(content, key=lambda c: c["ctime"])
    m = VOLID_RE.match(newest["volid"])
    assert m and m.group(1) == "qemu" and m.group(2) == "100"
    assert m.group(3)[:10] == time.strftime("%Y_%m_%d", before)
    assert newest["format"] == "vma.zst" and newest["subtype"] == "qemu" and newest["notes"] == "web-01 on pve1"
    assert newest["protected"] == 0 and newest["content"] == "backup"
    assert f"INFO: creating vzdump archive '/mnt/pve/nfs-shared/dump/{newest['volid'].split('/', 1)[1]}'" in log


async def test_vzdump_multi_guest_with_errors(sim: RunningSimulator, admin: Api) -> None:
    sim.state.guests[102].config["lock"] = "snapshot"  # as if a snapshot were being taken right now
    r = await admin.post("/nodes/pve1/vzdump", data={"vmid": "100,102,107", "storage": "nfs-shared"})
    upid = r.json()["data"]
    assert ":vzdump::" in upid  # several guests: empty id
    st = await admin.wait_task(upid)
    log = await admin.log(upid)
    assert st["exitstatus"] == "job errors"
    assert "ERROR: Backup of VM 102 failed - VM is locked (snapshot)" in log
    assert "INFO: Starting Backup of VM 107 (lxc)" in log and log[-1] == "TASK ERROR: job errors"
    names = [c["volid"] for c in await admin.data("GET", "/nodes/pve1/storage/nfs-shared/content")]
    assert any(re.search(r"vzdump-lxc-107-.*\.tar$", n) for n in names)  # compress defaults to 0


async def test_vzdump_nothing_on_this_node_is_ok(admin: Api) -> None:
    assert await admin.data("POST", "/nodes/pve3/vzdump", data={"vmid": "100"}) == "OK"


async def test_vzdump_to_local_storage(admin: Api) -> None:
    upid = await admin.data("POST", "/nodes/pve3/vzdump", data={"vmid": "103", "compress": "gzip"})
    await admin.wait_task(upid)
    content = await admin.data("GET", "/nodes/pve3/storage/local/content", params={"content": "backup"})
    assert content[0]["volid"].startswith("local:backup/vzdump-lxc-103-")
    assert content[0]["format"] == "tar.gz"
    assert await admin.data("GET", "/nodes/pve1/storage/local/content", params={"content": "backup"}) == []


async def test_vzdump_errors(admin: Api) -> None:
    # pve-manager PVE/VZDump.pm new() checks the storage inside the worker (storage_info)
    upid = await admin.data("POST", "/nodes/pve1/vzdump", data={"vmid": "100", "storage": "local-lvm"})
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == (
        "could not get storage information for 'local-lvm': "
        "can't use storage 'local-lvm' for backups - wrong content type"
    )
    # verify_vzdump_parameters: nothing selected, or conflicting selections, is a 400
    r = await admin.post("/nodes/pve1/vzdump", data={})
    assert r.status_code == 400 and r.json()["errors"] == {"vmid": "property is missing"}


async def test_backup_job_crud(admin: Api) -> None:
    jobs = await admin.data("GET", "/cluster/backup")
    assert len(jobs) == 2 and all(j["type"] == "vzdump" and j["id"].startswith("backup-") for j in jobs)
    assert all(isinstance(j["next-run"], int) for j in jobs)
    await admin.data(
        "POST",
        "/cluster/backup",
        data={"id": "nightly-dev", "schedule": "01:30", "pool": "dev", "storage": "nfs-shared", "mode": "snapshot"},
    )
    job = await admin.data("GET", "/cluster/backup/nightly-dev")
    assert job["pool"] == "dev" and job["enabled"] == 1 and job["schedule"] == "01:30"
    await admin.data("PUT", "/cluster/backup/nightly-dev", data={"enabled": "0", "comment": "paused"})
    job = await admin.data("GET", "/cluster/backup/nightly-dev")
    assert job["enabled"] == 0 and job["comment"] == "paused"
    await admin.data("PUT", "/cluster/backup/nightly-dev", data={"delete": "comment"})
    assert "comment" not in await admin.data("GET", "/cluster/backup/nightly-dev")
    r = await admin.post("/cluster/backup", data={"id": "nightly-dev", "schedule": "01:30", "all": "1"})
    assert r.json()["message"] == "Job 'nightly-dev' already exists\n"
    await admin.data("DELETE", "/cluster/backup/nightly-dev")
    r = await admin.get("/cluster/backup/nightly-dev")  # read_job: raise_param_exc
    assert (r.status_code, r.json()["errors"]) == (400, {"id": "No such job 'nightly-dev'"})


async def test_auditor_cannot_change_jobs(auditor: Api) -> None:
    r = await auditor.post("/cluster/backup", data={"schedule": "01:00", "all": "1"})
    assert r.json()["message"] == "Permission check failed (/, Sys.Modify)\n"


# ---------------------------------------------------------------------------------------------- PVE 9.1 rules
# pve-manager PVE/API2/VZDump.pm vzdump, PVE/VZDump.pm (verify_vzdump_parameters, get_included_guests, new),
# PVE/API2/Backup.pm (create_job, update_job, index), pve-guest-common PVE/VZDump/Plugin.pm
# (remove_vmid_from_backup_jobs)


async def test_vzdump_selection_conflicts_are_400(admin: Api) -> None:
    for extra in ({"all": "1"}, {"exclude": "101"}, {"pool": "prod"}):
        r = await admin.post("/nodes/pve1/vzdump", data={"vmid": "100", **extra})
        key = next(iter(extra))
        assert r.status_code == 400 and r.json()["errors"] == {key: "option conflicts with option 'vmid'"}


async def test_vzdump_exclude_alone_means_all_but_these_and_templates_count(admin: Api) -> None:
    upid = await admin.data("POST", "/nodes/pve1/vzdump", data={"exclude": "100,102,107", "storage": "nfs-shared"})
    st = await admin.wait_task(upid)
    log = await admin.log(upid)
    assert st["exitstatus"] == "OK", log
    started = [line for line in log if line.startswith("INFO: Starting Backup of VM")]
    assert started == ["INFO: Starting Backup of VM 106 (qemu)", "INFO: Starting Backup of VM 9000 (qemu)"]
    assert "--all 1" in log[0]


async def test_vzdump_unknown_guest_and_storage_fail_in_the_task(admin: Api) -> None:
    upid = await admin.data("POST", "/nodes/pve2/vzdump", data={"vmid": "4242", "storage": "nfs-shared"})
    assert ":vzdump:4242:" in upid
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == "job errors"
    assert "ERROR: Backup of VM 4242 failed - unable to find VM '4242'" in await admin.log(upid)
    upid = await admin.data("POST", "/nodes/pve1/vzdump", data={"vmid": "100", "storage": "nope"})
    st = await admin.wait_task(upid)
    assert st["exitstatus"] == (
        "could not activate storage 'nope': storage 'nope' does not exist "
        "could not get storage information for 'nope': storage 'nope' does not exist"
    )


async def test_job_needs_a_schedule_and_converts_starttime(admin: Api) -> None:
    r = await admin.post("/cluster/backup", data={"id": "j1", "all": "1"})
    assert r.status_code == 400 and r.json()["errors"] == {"schedule": "neither 'starttime' nor 'schedule' were set"}
    r = await admin.post("/cluster/backup", data={"id": "j1", "all": "1", "schedule": "01:00", "starttime": "02:00"})
    assert r.json()["errors"] == {"starttime": "'starttime' and 'schedule' cannot both be set"}
    r = await admin.post("/cluster/backup", data={"id": "j1", "schedule": "01:00"})
    assert r.json()["errors"] == {"vmid": "property is missing"}
    await admin.data("POST", "/cluster/backup", data={"id": "j1", "vmid": "100", "starttime": "02:00", "dow": "sat"})
    assert (await admin.data("GET", "/cluster/backup/j1"))["schedule"] == "sat 02:00"


async def test_job_update_selection_replaces_the_other_selection(admin: Api) -> None:
    await admin.data("POST", "/cluster/backup", data={"id": "j2", "schedule": "01:00", "exclude": "100"})
    job = await admin.data("GET", "/cluster/backup/j2")
    assert job["all"] == 1 and job["exclude"] == "100"  # exclude alone means all-but
    await admin.data("PUT", "/cluster/backup/j2", data={"vmid": "101,102"})
    job = await admin.data("GET", "/cluster/backup/j2")
    assert job["vmid"] == "101,102" and "all" not in job and "exclude" not in job
    await admin.data("PUT", "/cluster/backup/j2", data={"pool": "dev"})
    job = await admin.data("GET", "/cluster/backup/j2")
    assert job["pool"] == "dev" and "vmid" not in job
    r = await admin.put("/cluster/backup/j2", data={"delete": "bogus"})
    assert r.status_code == 400 and r.json()["errors"] == {"delete": "unknown option 'bogus'"}
    r = await admin.put("/cluster/backup/j2", data={})
    assert r.json()["message"] == "no options specified\n"


async def test_next_run_follows_the_weekday(sim: RunningSimulator, admin: Api) -> None:
    await admin.data("POST", "/cluster/backup", data={"id": "sunday", "schedule": "sun 01:00", "all": "1"})
    jobs = {j["id"]: j for j in await admin.data("GET", "/cluster/backup")}
    now = sim.sim.clock.now()
    nxt = jobs["sunday"]["next-run"]
    when = time.gmtime(nxt)
    assert (when.tm_wday, when.tm_hour, when.tm_min) == (6, 1, 0)
    assert now < nxt <= now + 7 * 86400
    weekly = next(j for j in jobs.values() if j.get("schedule") == "sat 03:00")
    assert time.gmtime(weekly["next-run"]).tm_wday == 5


async def test_purge_removes_the_guest_from_jobs(sim: RunningSimulator, admin: Api) -> None:
    await admin.data("POST", "/cluster/backup", data={"id": "only105", "schedule": "01:00", "vmid": "105"})
    await admin.data("POST", "/cluster/backup", data={"id": "all-but", "schedule": "01:00", "exclude": "105,110"})
    upid = await admin.data("DELETE", "/nodes/pve3/qemu/105", params={"purge": "1"})
    assert (await admin.wait_task(upid))["exitstatus"] == "OK"
    jobs = {j["id"]: j for j in await admin.data("GET", "/cluster/backup")}
    assert "only105" not in jobs  # its list became empty: the job is gone
    assert jobs["all-but"]["exclude"] == "110"
