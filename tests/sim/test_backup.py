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
    r = await admin.post("/nodes/pve1/vzdump", data={"vmid": "100", "storage": "local-lvm"})
    assert r.json()["message"] == "storage 'local-lvm' does not support backups\n"
    r = await admin.post("/nodes/pve1/vzdump", data={})
    assert r.status_code == 500


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
    r = await admin.get("/cluster/backup/nightly-dev")
    assert (r.status_code, r.json()["message"]) == (500, "job 'nightly-dev' does not exist\n")


async def test_auditor_cannot_change_jobs(auditor: Api) -> None:
    r = await auditor.post("/cluster/backup", data={"schedule": "01:00", "all": "1"})
    assert r.json()["message"] == "Permission check failed (/, Sys.Modify)\n"
