"""Tasks: UPID format, status, logs and paging, listings with filters, stopping (notes §3)."""

from __future__ import annotations

import pytest

from pvemcp.dialect.upid import Upid, parse_upid
from pvemcp.sim import RunningSimulator

from .conftest import Api

pytestmark = pytest.mark.anyio


def test_upid_round_trip() -> None:
    upid = Upid.encode("pve1", 0x1234, 0xABCDEF, 0x67449780, "vzdump", "", "root@pam!tok")
    assert str(upid) == "UPID:pve1:00001234:00ABCDEF:67449780:vzdump::root@pam!tok:"
    assert parse_upid(str(upid)) == upid
    assert (upid.userid, upid.tokenid) == ("root@pam", "tok")


@pytest.mark.parametrize(
    "fields",
    [
        ("pve.lan", 1, 2, 3, "qmstart", "100", "root@pam"),  # PVE's node names have no dot
        ("pve1", 1, 2, 3, "qmstart", "a:b", "root@pam"),  # a colon would shift every field
        ("pve1", 0x1_0000_0000, 2, 3, "qmstart", "100", "root@pam"),  # the pid is 8 hex digits
    ],
)
def test_upid_encode_refuses_what_pve_cannot_decode(fields: tuple[str, int, int, int, str, str, str]) -> None:
    with pytest.raises(ValueError, match="not a valid UPID"):
        Upid.encode(*fields)


async def test_status_fields(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "300"})
    upid = r.json()["data"]
    u = parse_upid(upid)
    assert (u.node, u.type, u.id, u.user) == ("pve1", "qmclone", "100", "root@pam!pvemcp")
    st = await admin.data("GET", f"/nodes/pve1/tasks/{upid}/status")
    assert st["status"] == "running" and "exitstatus" not in st and "endtime" not in st
    assert st["user"] == "root@pam" and st["tokenid"] == "pvemcp"
    assert (st["pid"], st["starttime"]) == (u.pid, u.starttime)
    sim.advance_clock(120)  # the simulated clock finishes the task without waiting
    st = await admin.data("GET", f"/nodes/pve1/tasks/{upid}/status")
    assert st["status"] == "stopped" and st["exitstatus"] == "OK" and "endtime" not in st


async def test_log_paging(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "301"})
    upid = r.json()["data"]
    sim.advance_clock(120)
    r = await admin.get(f"/nodes/pve1/tasks/{upid}/log")
    body = r.json()
    lines = body["data"]
    assert body["total"] == len(lines) == 8
    assert [x["n"] for x in lines] == list(range(1, 9)) and lines[-1]["t"] == "TASK OK"
    r = await admin.get(f"/nodes/pve1/tasks/{upid}/log", start="2", limit="3")
    page = r.json()
    assert [x["n"] for x in page["data"]] == [3, 4, 5] and page["total"] == 8
    r = await admin.get(f"/nodes/pve1/tasks/{upid}/log", start="6", limit="0")
    assert [x["n"] for x in r.json()["data"]] == [7, 8]


async def test_empty_log_says_no_content(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/105/status/start")  # 105 is on pve3: fails only in the task
    upid = r.json()["data"]
    log = await admin.data("GET", f"/nodes/pve1/tasks/{upid}/log")
    assert log == [{"n": 1, "t": "TASK ERROR: Configuration file 'nodes/pve1/qemu-server/105.conf' does not exist"}]
    r = await admin.post("/nodes/pve1/qemu/100/status/stop")
    upid = r.json()["data"]
    r = await admin.get(f"/nodes/pve1/tasks/{upid}/log")
    assert r.json() == {"data": [{"n": 1, "t": "no content"}]}


async def test_bad_upids(shared_admin: Api) -> None:
    r = await shared_admin.get("/nodes/pve1/tasks/UPID:garbage/status")
    assert r.status_code == 400 and r.json()["errors"] == {"upid": "unable to parse worker upid"}
    fake = "UPID:pve1:00001234:00ABCDEF:67449780:qmstart:100:root@pam:"
    r = await shared_admin.get(f"/nodes/pve1/tasks/{fake}/status")
    assert r.status_code == 400 and r.json()["errors"] == {"upid": "no such task"}
    tasks = await shared_admin.data("GET", "/nodes/pve1/tasks")
    r = await shared_admin.get(f"/nodes/pve2/tasks/{tasks[0]['upid']}/status")
    assert r.json()["errors"] == {"upid": "no such task"}


async def test_task_list_filters(sim: RunningSimulator, admin: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "302"})
    running = r.json()["data"]
    archive = await admin.data("GET", "/nodes/pve1/tasks")
    assert running not in {t["upid"] for t in archive}
    active = await admin.data("GET", "/nodes/pve1/tasks", params={"source": "active"})
    assert [t["upid"] for t in active] == [running] and active[0]["status"] == "RUNNING"
    await admin.data("POST", "/nodes/pve1/qemu/100/status/start")  # fails: already running
    sim.advance_clock(120)
    tasks = await admin.data("GET", "/nodes/pve1/tasks")
    assert [t["starttime"] for t in tasks] == sorted((t["starttime"] for t in tasks), reverse=True)
    clones = await admin.data("GET", "/nodes/pve1/tasks", params={"typefilter": "qmclone"})
    assert [t["upid"] for t in clones] == [running] and clones[0]["status"] == "OK" and "endtime" in clones[0]
    errors = await admin.data("GET", "/nodes/pve1/tasks", params={"errors": 1})
    assert [t["status"] for t in errors] == ["VM 100 already running"]
    by_vm = await admin.data("GET", "/nodes/pve1/tasks", params={"vmid": 100})
    assert {t["type"] for t in by_vm} == {"qmclone", "qmstart"}
    mine = await admin.data("GET", "/nodes/pve1/tasks", params={"userfilter": "PVEMCP"})
    assert len(mine) == 2
    r = await admin.get("/nodes/pve1/tasks", limit="1", start="1")
    assert len(r.json()["data"]) == 1 and r.json()["total"] == len(tasks)
    cluster = await admin.data("GET", "/cluster/tasks")
    assert running in {t["upid"] for t in cluster}


async def test_stop_task_interrupts_and_cleans_up(sim: RunningSimulator, admin: Api, auditor: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/clone", data={"newid": "303"})
    upid = r.json()["data"]
    r = await auditor.delete(f"/nodes/pve1/tasks/{upid}")
    assert r.status_code == 403 and r.json()["message"] == "Permission check failed (/nodes/pve1, Sys.Modify)\n"
    assert (await admin.delete(f"/nodes/pve1/tasks/{upid}")).json() == {"data": None}
    st = await admin.data("GET", f"/nodes/pve1/tasks/{upid}/status")
    # qemu-server clone_vm: the local SIGTERM handler dies inside the eval that reports "clone failed: …"
    assert st["status"] == "stopped" and st["exitstatus"] == "clone failed: interrupted by signal"
    assert (await admin.log(upid))[-1] == "TASK ERROR: clone failed: interrupted by signal"
    r = await admin.get("/nodes/pve1/qemu/303/config")
    assert r.status_code == 500  # the half-made clone is gone
    r = await admin.post("/nodes/pve2/qemu/108/status/shutdown", data={"timeout": "30"})
    upid = r.json()["data"]
    await admin.delete(f"/nodes/pve2/tasks/{upid}")
    st = await admin.data("GET", f"/nodes/pve2/tasks/{upid}/status")
    assert st["exitstatus"] == "received interrupt"


async def test_auditor_may_read_others_tasks(sim: RunningSimulator, admin: Api, auditor: Api) -> None:
    r = await admin.post("/nodes/pve1/qemu/100/status/stop")
    upid = r.json()["data"]
    st = await auditor.data("GET", f"/nodes/pve1/tasks/{upid}/status")
    assert st["user"] == "root@pam"


async def test_warnings_exit_status(sim: RunningSimulator, admin: Api) -> None:
    from pvemcp.sim.tasks import TaskContext, Worker

    def worker(ctx: TaskContext) -> Worker:
        ctx.warn("something odd")
        yield 1.0
        ctx.warn("again")

    task = sim.sim.tasks.start("pve1", "aptupdate", "", "root@pam", worker)
    sim.advance_clock(2)
    st = await admin.data("GET", f"/nodes/pve1/tasks/{task.upid}/status")
    assert st["exitstatus"] == "WARNINGS: 2"
    assert await admin.log(str(task.upid)) == ["WARN: something odd", "WARN: again", "TASK WARNINGS: 2"]


async def test_tasks_progress_with_real_time_when_not_frozen() -> None:
    import anyio
    import httpx2

    from pvemcp.sim import running_simulator

    from .conftest import ssl_context, token_header

    async with (
        running_simulator(task_speed=1000.0) as fast,
        httpx2.AsyncClient(verify=ssl_context(fast), headers=token_header(fast.token_id, fast.token_secret)) as c,
    ):
        upid = (await c.post(fast.url + "/nodes/pve1/qemu/100/clone", data={"newid": "310"})).json()["data"]
        for _ in range(1000):  # bounded: the 16 s clone needs ~16 ms of real time at speed 1000
            st = (await c.get(f"{fast.url}/nodes/pve1/tasks/{upid}/status")).json()["data"]
            if st["status"] == "stopped":
                break
            await anyio.sleep(0.01)
        assert st["exitstatus"] == "OK"
