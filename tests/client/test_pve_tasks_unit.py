"""Task waiting logic: progress parsing, strictly increasing progress, log tails, honest deadlines."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError
from pvemcp.core.pve.tasks import exit_ok, percent_from_line, wait_task

UPID = "UPID:pve1:0000ABCD:00001234:65A1B2C3:qmclone:100:root@pam!mcp:"
FAST: dict[str, Any] = {"poll_initial_s": 0.001, "poll_max_s": 0.002}  # one task step per poll: keep polls quick
CFG = ClientConfig(url="https://pve.test", token_id="root@pam!mcp", token_secret="s3cr3t-token-value")


@pytest.mark.parametrize(
    ("line", "pct"),
    [
        ("transferred 1.0 GiB of 32.0 GiB (3.13%)", 3.13),
        ("drive-scsi0: transferred 16.0 GiB of 32.0 GiB (50.00%) in 20s", 50.0),
        ("INFO:  42% (1.7 GiB of 4.0 GiB) in 6s, read: 290.1 MiB/s, write: 270.2 MiB/s", 42.0),
        ("INFO: 100% (4.0 GiB of 4.0 GiB) in 12s, read: 341.3 MiB/s", 100.0),
        ("progress 7% (read 751619276 bytes, duration 2 sec)", 7.0),
        ("2025-01-01 12:00:03 migration active, transferred 1.0 GiB of 4.0 GiB VM-state, 112.0 MiB/s", 25.0),
    ],
)
def test_percent_from_line(line: str, pct: float) -> None:
    value = percent_from_line(line)
    assert value is not None and abs(value - pct) < 0.01


@pytest.mark.parametrize(
    "line",
    ["INFO: Starting Backup of VM 100 (qemu)", "create full clone of drive scsi0 (local-lvm:vm-100-disk-0)", "TASK OK"],
)
def test_lines_without_progress(line: str) -> None:
    assert percent_from_line(line) is None


def test_exit_ok() -> None:
    assert exit_ok("OK") and exit_ok("WARNINGS: 2")
    assert not exit_ok("VM 100 already running") and not exit_ok(None) and not exit_ok("job errors")


class FakeTask:
    """A task that advances one step per status poll; its log grows as it goes."""

    def __init__(self, steps: list[str], exitstatus: str | None) -> None:
        self.steps = steps
        self.exitstatus = exitstatus
        self.polls = 0
        self.log: list[str] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith("/status"):
            if self.polls < len(self.steps):
                self.log.append(self.steps[self.polls])
            self.polls += 1
            done = self.exitstatus is not None and self.polls > len(self.steps)
            if done and (not self.log or not self.log[-1].startswith("TASK")):
                self.log.append("TASK OK" if self.exitstatus == "OK" else f"TASK ERROR: {self.exitstatus}")
            data: dict[str, Any] = {"upid": UPID, "node": "pve1", "status": "stopped" if done else "running"}
            if done:
                data["exitstatus"] = self.exitstatus
            return httpx2.Response(200, json={"data": data})
        if path.endswith("/log"):
            q = parse_qs(request.url.query.decode())
            start, limit = int(q["start"][0]), int(q["limit"][0])
            lines = self.log[start:] if limit == 0 else self.log[start : start + limit]
            data_lines = [{"n": start + i + 1, "t": t} for i, t in enumerate(lines)]
            if not self.log:
                return httpx2.Response(200, json={"data": [{"n": 1, "t": "no content"}]})
            return httpx2.Response(200, json={"data": data_lines, "total": len(self.log)})
        return httpx2.Response(501)


@pytest.mark.anyio
async def test_clone_progress_is_strictly_increasing_percent() -> None:
    steps = [
        "create full clone of drive scsi0 (local-lvm:vm-100-disk-0)",
        "transferred 1.0 GiB of 4.0 GiB (25.00%)",
        "transferred 1.0 GiB of 4.0 GiB (25.00%)",
        "transferred 2.0 GiB of 4.0 GiB (50.00%)",
        "transferred 4.0 GiB of 4.0 GiB (100.00%)",
    ]
    task = FakeTask(steps, "OK")
    seen: list[tuple[float, float | None, str]] = []

    async def on_progress(p: float, total: float | None, message: str) -> None:
        seen.append((p, total, message))

    async with PveClient(CFG, transport=httpx2.MockTransport(task.handler)) as pve:
        result = await wait_task(pve, UPID, deadline_s=60, on_progress=on_progress, **FAST)
    assert result.ok and result.status == "stopped" and result.exitstatus == "OK" and not result.timed_out
    assert result.log_tail == ()
    values = [p for p, _, _ in seen]
    assert values == sorted(set(values)), values  # strictly increasing
    assert [p for p, t, _ in seen if t == 100.0][:3] == [25.0, 50.0, 100.0]
    assert any("transferred 2.0 GiB" in m for _, _, m in seen)


@pytest.mark.anyio
async def test_failure_returns_log_tail_without_progress_callback() -> None:
    steps = [f"line {i}" for i in range(30)]
    task = FakeTask(steps, "VM 100 already running")
    async with PveClient(CFG, transport=httpx2.MockTransport(task.handler)) as pve:
        result = await wait_task(pve, UPID, deadline_s=60, **FAST)
    assert not result.ok and result.exitstatus == "VM 100 already running"
    assert len(result.log_tail) == 20
    assert result.log_tail[-1] == "TASK ERROR: VM 100 already running"
    assert result.log_tail[0] == "line 11"


@pytest.mark.anyio
async def test_deadline_reports_running_task_as_running() -> None:
    task = FakeTask(["working"] * 1000, None)
    seen: list[float] = []

    async def on_progress(p: float, total: float | None, message: str) -> None:
        assert total == 0.5  # elapsed-time mode: total is the deadline
        seen.append(p)

    async with PveClient(CFG, transport=httpx2.MockTransport(task.handler)) as pve:
        result = await pve.wait_task(UPID, deadline_s=0.5, on_progress=on_progress)
    assert result.timed_out and result.status == "running" and result.exitstatus is None and not result.ok
    assert seen == sorted(set(seen))


@pytest.mark.anyio
async def test_bad_upid_is_a_params_error() -> None:
    async with PveClient(CFG, transport=httpx2.MockTransport(lambda r: httpx2.Response(500))) as pve:
        with pytest.raises(PveError) as info:
            await pve.wait_task("UPID:broken", deadline_s=1)
    assert info.value.kind == "params"
