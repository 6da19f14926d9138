"""Waiting for Proxmox tasks: poll status with backoff, report progress, return an honest result.

Long operations answer with a UPID at once; the real work (and many failures) happen in the task.  A tool
that "waits" must therefore poll ``GET /nodes/{node}/tasks/{upid}/status`` until ``status == "stopped"``
and read ``exitstatus`` (``OK``, ``WARNINGS: n``, or the error text).  On failure the last lines of the
task log carry the real reason, so they are returned too.

Progress: where PVE prints percentages (clone/move/mirror ``transferred X of Y (NN.NN%)``, vzdump
``INFO:  42% (...)``, live migration ``transferred X of Y VM-state``) progress is that percentage (total
100); otherwise it is elapsed seconds against the deadline.  Reported values are strictly increasing, as
MCP progress notifications require.

On the deadline the result says ``timed_out=True`` with ``status="running"``: the task is *not* stopped
and the caller must never be told otherwise.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from pvemcp.core.pve.errors import PveError
from pvemcp.dialect.types import ProgressFn
from pvemcp.dialect.upid import Upid, parse_upid

if TYPE_CHECKING:
    from pvemcp.core.pve.client import PveClient


STATUS_PATH = "/nodes/{node}/tasks/{upid}/status"
LOG_PATH = "/nodes/{node}/tasks/{upid}/log"

_PERCENT_PATTERNS = (
    # clone / move disk / drive-mirror: "transferred 1.0 GiB of 32.0 GiB (3.13%)"
    re.compile(r"transferred .+? of .+? \((?P<pct>\d{1,3}(?:\.\d+)?)%\)"),
    # vzdump (qemu): "INFO:  42% (1.7 GiB of 4.0 GiB) in 6s, read: ..."
    re.compile(r"^INFO:\s+(?P<pct>\d{1,3}(?:\.\d+)?)%"),
    # generic "progress NN%" (e.g. qmrestore "progress 42% (read ...)")
    re.compile(r"\bprogress (?P<pct>\d{1,3}(?:\.\d+)?)%"),
)
# live migration: "migration active, transferred 1.1 GiB of 4.0 GiB VM-state, 112.0 MiB/s"
_RATIO_RE = re.compile(
    r"transferred (?P<done>\d+(?:\.\d+)?)\s*(?P<du>[KMGTP]i?B|B)? of (?P<total>\d+(?:\.\d+)?)\s*(?P<tu>[KMGTP]i?B|B)?"
)
_UNITS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "PiB": 1024**5,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "PB": 1000**5,
}


@dataclass(frozen=True, slots=True)
class TaskResult:
    """Outcome of waiting for a task.

    ``status`` is Proxmox's (``stopped``/``running``); ``exitstatus`` is ``None`` while running; ``ok``
    is true for ``OK`` and ``WARNINGS: n``; ``duration_s`` is how long we waited (PVE's status has no
    end time); ``log_tail`` holds the last lines of the log when the task failed; ``timed_out`` means
    the deadline passed while the task was still running — it keeps running.
    """

    upid: str
    node: str
    type: str
    id: str
    status: str
    exitstatus: str | None
    ok: bool
    duration_s: float
    log_tail: tuple[str, ...]
    timed_out: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view for tool results."""
        out: dict[str, Any] = {
            "upid": self.upid,
            "node": self.node,
            "status": self.status,
            "exitstatus": self.exitstatus,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 3),
            "timed_out": self.timed_out,
        }
        if self.log_tail:
            out["log_tail"] = list(self.log_tail)
        return out


def percent_from_line(line: str) -> float | None:
    """The progress percentage a PVE task log line reports, or ``None``."""
    for pattern in _PERCENT_PATTERNS:
        m = pattern.search(line)
        if m:
            value = float(m.group("pct"))
            return value if 0.0 <= value <= 100.0 else None
    m = _RATIO_RE.search(line)
    if m:
        done = float(m.group("done")) * _UNITS.get(m.group("du") or m.group("tu"), 1)
        total = float(m.group("total")) * _UNITS.get(m.group("tu"), 1)
        if total > 0 and 0 <= done <= total:
            return 100.0 * done / total
    return None


def exit_ok(exitstatus: str | None) -> bool:
    """``OK`` and ``WARNINGS: n`` are successes; anything else is the error text."""
    return exitstatus is not None and (exitstatus == "OK" or exitstatus.startswith("WARNINGS"))


class _Progress:
    """Turns observations into strictly increasing ``on_progress`` calls (percent mode wins once seen)."""

    def __init__(self, callback: ProgressFn | None, deadline_s: float) -> None:
        self._callback = callback
        self._deadline_s = deadline_s
        self._last: float | None = None
        self.percent_mode = False

    async def _emit(self, value: float, total: float | None, message: str) -> None:
        if self._callback is None:
            return
        if self._last is not None and value <= self._last:
            return
        self._last = value
        await self._callback(value, total, message[:200])

    async def percent(self, value: float, message: str) -> None:
        self.percent_mode = True
        await self._emit(round(value, 2), 100.0, message)

    async def elapsed(self, seconds: float, message: str) -> None:
        if not self.percent_mode:
            await self._emit(round(seconds, 2), self._deadline_s, message)


def _to_upid(value: str | Upid) -> Upid:
    if isinstance(value, Upid):
        return value
    try:
        return parse_upid(value)
    except ValueError as exc:
        raise PveError(
            kind="params",
            message=str(exc),
            errors={"upid": "not a valid UPID"},
            hint="pass the UPID exactly as returned by the task-starting call.",
        ) from None


def _log_lines(envelope_data: Any, total: int | None) -> list[tuple[int, str]]:
    if not isinstance(envelope_data, list):
        return []
    lines: list[tuple[int, str]] = []
    for entry in envelope_data:
        if isinstance(entry, dict) and isinstance(entry.get("n"), int) and isinstance(entry.get("t"), str):
            lines.append((entry["n"], entry["t"]))
    # An empty log is reported as [{"n": 1, "t": "no content"}] with no/zero total.
    if lines == [(1, "no content")] and not total:
        return []
    return lines


async def _read_log(client: PveClient, upid: Upid, start: int, limit: int) -> tuple[list[tuple[int, str]], int | None]:
    envelope = await client.request(
        "GET", LOG_PATH, path={"node": upid.node, "upid": upid.upid}, params={"start": start, "limit": limit}
    )
    return _log_lines(envelope.data, envelope.total), envelope.total


async def log_tail(client: PveClient, upid: str | Upid, lines: int = 20) -> tuple[str, ...]:
    """The last ``lines`` lines of a task log (two small requests: the total, then the tail)."""
    u = _to_upid(upid)
    first, total = await _read_log(client, u, 0, 1)
    if total is None:
        everything, _ = await _read_log(client, u, 0, 0)  # limit=0: to the end
        return tuple(t for _, t in everything[-lines:])
    if total <= 1:
        return tuple(t for _, t in first)
    tail, _ = await _read_log(client, u, max(0, total - lines), lines)
    return tuple(t for _, t in tail)


async def wait_task(
    client: PveClient,
    upid: str | Upid,
    deadline_s: float,
    on_progress: ProgressFn | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    poll_initial_s: float = 0.2,
    poll_max_s: float = 2.0,
    tail_lines: int = 20,
) -> TaskResult:
    """Poll a task until it stops or ``deadline_s`` seconds pass; never claims a running task stopped.

    With ``on_progress`` the log is read incrementally on every poll (to derive percentages and to have
    the tail at hand); without it the log is read only if the task fails.
    """
    if not deadline_s > 0:
        raise PveError(kind="params", message="deadline_s must be positive", errors={"deadline_s": "must be > 0"})
    u = _to_upid(upid)
    start = clock()
    deadline = start + deadline_s
    delay = poll_initial_s
    progress = _Progress(on_progress, deadline_s)
    recent: deque[str] = deque(maxlen=tail_lines)
    seen = 0  # number of log lines consumed (PVE's `start` offset)
    last_line = ""

    while True:
        status = await client.get(STATUS_PATH, path={"node": u.node, "upid": u.upid})
        if not isinstance(status, dict):
            status = {}
        if on_progress is not None:
            lines, _ = await _read_log(client, u, seen, 500)
            for n, text in lines:
                if n <= seen:
                    continue
                seen = n
                recent.append(text)
                last_line = text
                pct = percent_from_line(text)
                if pct is not None:
                    await progress.percent(pct, text)
        now = clock()
        elapsed = now - start
        state = str(status.get("status", ""))
        if state == "stopped":
            exitstatus = status.get("exitstatus")
            exitstatus = str(exitstatus) if exitstatus is not None else "unexpected status"
            ok = exit_ok(exitstatus)
            tail: tuple[str, ...] = ()
            if not ok:
                tail = await log_tail(client, u, tail_lines)
            if progress.percent_mode:
                if ok:  # a failed task is not "100 % done"
                    await progress.percent(100.0, f"TASK {exitstatus}")
            else:
                await progress.elapsed(elapsed, f"task finished: {exitstatus}")
            return TaskResult(
                upid=u.upid,
                node=u.node,
                type=u.type,
                id=u.id,
                status="stopped",
                exitstatus=exitstatus,
                ok=ok,
                duration_s=elapsed,
                log_tail=tail,
                timed_out=False,
            )
        await progress.elapsed(elapsed, last_line or f"{u.type} {u.id}".strip() + f" running for {elapsed:.0f} s")
        if now >= deadline:
            return TaskResult(
                upid=u.upid,
                node=u.node,
                type=u.type,
                id=u.id,
                status=state or "running",
                exitstatus=None,
                ok=False,
                duration_s=elapsed,
                log_tail=tuple(recent),
                timed_out=True,
            )
        await anyio.sleep(max(0.0, min(delay, deadline - now)))
        delay = min(delay * 2, poll_max_s)
