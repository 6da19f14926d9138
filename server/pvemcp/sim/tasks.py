"""PVE worker tasks: UPIDs, logs, exit statuses — driven lazily by the simulated clock.

A simulated worker is a generator. It logs lines, mutates the cluster state and ``yield``s the number of
simulated seconds it "works" before continuing; raising :class:`~pvemcp.sim.errors.TaskError` ends the task
with ``TASK ERROR: <message>`` exactly like ``die`` inside ``fork_worker``. Nothing runs in the background:
:meth:`TaskManager.tick` resumes every worker whose time has come whenever a request looks at the state,
so a client polling ``…/status`` sees the same progression it would on a real node, and a test can finish a
task instantly by advancing the clock.

The first segment of a worker (up to its first ``yield``) runs when the task is created, as a forked
worker would start immediately; so a lock taken at the start of a task is visible as soon as the UPID is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from pvemcp.dialect.upid import Upid
from pvemcp.sim.clock import SimClock
from pvemcp.sim.errors import PveHttpError, TaskError
from pvemcp.sim.state import ClusterState

Worker = Generator[float, None, None]

INTERRUPT_GENERIC = "received interrupt"
INTERRUPT_SIGNAL = "interrupted by signal"


@dataclass
class Task:
    """One worker: identity (UPID), log lines, and its state machine."""

    upid: Upid  # its text (``str(upid)``) keys every task lookup
    log: list[str] = field(default_factory=list)
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    warnings: int = 0
    interrupt_text: str = INTERRUPT_GENERIC
    resume_at: float = 0.0  # task-clock time of the next resumption
    started_task_time: float = 0.0
    started_wall: float = 0.0
    gen: Worker | None = None

    @property
    def node(self) -> str:
        return self.upid.node

    @property
    def running(self) -> bool:
        return self.status == "running"

    def _upid_fields(self) -> tuple[dict[str, object], str | None]:
        """The UPID's fields both task views start with, and the token a token's task ran as.

        The token is returned rather than added because the two views place ``tokenid`` differently
        (after ``status`` in the status body, before it in listings).
        """
        u = self.upid
        entry: dict[str, object] = {
            "upid": u.upid,
            "node": u.node,
            "pid": u.pid,
            "pstart": u.pstart,
            "starttime": u.starttime,
            "type": u.type,
            "id": u.id,
            "user": u.userid,
        }
        return entry, u.tokenid

    def status_entry(self) -> dict[str, object]:
        """Body of ``GET /nodes/{node}/tasks/{upid}/status`` (no ``endtime`` there, as in PVE)."""
        entry, token = self._upid_fields()
        entry["status"] = self.status
        if token is not None:
            entry["tokenid"] = token
        if not self.running:
            entry["exitstatus"] = self.exitstatus or "unexpected status"
        return entry

    def list_entry(self) -> dict[str, object]:
        """An entry of ``/nodes/{node}/tasks`` and ``/cluster/tasks``: ``status`` is the exit text."""
        entry, token = self._upid_fields()
        if token is not None:
            entry["tokenid"] = token
        if self.running:
            entry["status"] = "RUNNING"
        else:
            entry["status"] = self.exitstatus or "unexpected status"
            entry["endtime"] = self.endtime if self.endtime is not None else self.upid.starttime
        return entry


class TaskContext:
    """What a worker gets: its task (to log to) and the cluster."""

    def __init__(self, task: Task, state: ClusterState) -> None:
        self.task = task
        self.state = state

    def log(self, line: str) -> None:
        self.task.log.append(line)

    def warn(self, message: str) -> None:
        """``log_warn``: a ``WARN:`` line that counts towards ``TASK WARNINGS: n``."""
        self.task.log.append(f"WARN: {message}")
        self.task.warnings += 1

    @property
    def clock(self) -> SimClock:
        return self.state.clock

    def elapsed(self) -> float:
        """Simulated seconds the worker has run so far (what its log reports as durations)."""
        return max(0.0, self.task.resume_at - self.task.started_task_time)

    def now(self) -> float:
        """Wall-clock time of the current step: start + simulated elapsed, never ahead of the clock.

        Workers are resumed lazily, possibly long after their step was due (a test advancing the clock
        by an hour); timestamps in logs and archive names use the time the step was due instead.
        """
        return min(self.clock.now(), self.task.started_wall + self.elapsed())


WorkerFactory = Callable[[TaskContext], Worker]


class TaskManager:
    """All tasks of the cluster, newest last; resumes workers as simulated time passes."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.tasks: dict[str, Task] = {}
        self._running: list[Task] = []

    # ---- creation --------------------------------------------------------------------------------

    def _new_upid(self, node: str, wtype: str, wid: str, user: str, starttime: int | None = None) -> Upid:
        st = self.state
        now = st.clock.now()
        boot = st.nodes[node].boot_epoch if node in st.nodes else now - 86400
        pstart = int(max(1.0, now - boot) * 100) & 0xFFFFFFFF
        return Upid.encode(
            node=node,
            pid=st.alloc_pid(),
            pstart=pstart,
            starttime=int(now) if starttime is None else starttime,
            type=wtype,
            id=wid,
            user=user,
        )

    def start(
        self,
        node: str,
        wtype: str,
        wid: str,
        user: str,
        worker: WorkerFactory,
        *,
        interrupt_text: str = INTERRUPT_GENERIC,
    ) -> Task:
        """Fork a worker: create the UPID, run the worker's first segment, return the task."""
        self.tick()
        task = Task(self._new_upid(node, wtype, wid, user), interrupt_text=interrupt_text)
        now_tt = self.state.clock.task_time()
        task.started_task_time = now_tt
        task.started_wall = self.state.clock.now()
        task.resume_at = now_tt
        self.tasks[str(task.upid)] = task
        task.gen = worker(TaskContext(task, self.state))
        self._running.append(task)
        self._step(task, now_tt)
        self.state.touch()
        return task

    def add_finished(
        self,
        node: str,
        wtype: str,
        wid: str,
        user: str,
        starttime: int,
        duration: int,
        lines: list[str],
        exitstatus: str = "OK",
    ) -> Task:
        """Record a task that ran before the simulator started (seeded history)."""
        task = Task(self._new_upid(node, wtype, wid, user, starttime=starttime))
        task.log = list(lines)
        task.status = "stopped"
        task.exitstatus = exitstatus
        task.endtime = starttime + duration
        if exitstatus == "OK":
            task.log.append("TASK OK")
        elif exitstatus.startswith("WARNINGS: "):
            task.log.append(f"TASK {exitstatus}")
        else:
            task.log.append(f"TASK ERROR: {exitstatus}")
        self.tasks[str(task.upid)] = task
        return task

    # ---- progress ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Resume, in time order, every worker whose next resumption is due on the task clock."""
        if not self._running:
            return
        now_tt = self.state.clock.task_time()
        while True:
            due = [t for t in self._running if t.resume_at <= now_tt]
            if not due:
                return
            task = min(due, key=lambda t: t.resume_at)
            self._step(task, now_tt)

    def _step(self, task: Task, now_tt: float) -> None:
        assert task.gen is not None
        try:
            delay = next(task.gen)
        except StopIteration:
            self._finish(task, now_tt, None)
            return
        except TaskError as err:
            self._finish(task, now_tt, err.message)
            return
        except PveHttpError as err:  # a shared helper "died" inside the worker: same as a task error
            self._finish(task, now_tt, err.message.rstrip("\n"))
            return
        except Exception as err:  # a simulator bug must not kill the server: report it like PVE would
            print(f"pvemcp sim: worker {task.upid.type} crashed: {err!r}", file=sys.stderr)
            self._finish(task, now_tt, f"internal simulator error: {err}")
            return
        task.resume_at = task.resume_at + max(0.0, float(delay))
        self.state.touch()

    def _finish(self, task: Task, now_tt: float, error: str | None) -> None:
        task.status = "stopped"
        if error is not None:
            error = " ".join(error.split("\n")).strip()
            task.exitstatus = error
            task.log.append(f"TASK ERROR: {error}")
        elif task.warnings:
            task.exitstatus = f"WARNINGS: {task.warnings}"
            task.log.append(f"TASK WARNINGS: {task.warnings}")
        else:
            task.exitstatus = "OK"
            task.log.append("TASK OK")
        clock = self.state.clock
        # the wall time at which the task clock reached the finishing point
        lag = max(0.0, now_tt - task.resume_at) / clock.task_speed if clock.task_speed > 0 else 0.0
        task.endtime = max(task.upid.starttime, int(clock.now() - lag))
        if task in self._running:
            self._running.remove(task)
        task.gen = None
        self.state.touch()

    def complete(self, task: Task) -> None:
        """Run a worker to its end right now (for calls that wait for their task, ``background_delay``)."""
        guard = 0
        while task.running and guard < 10_000:
            self._step(task, task.resume_at)
            guard += 1

    def stop(self, task: Task) -> None:
        """``DELETE /nodes/{node}/tasks/{upid}``: interrupt the worker (its ``finally`` blocks clean up)."""
        self.tick()
        if not task.running or task.gen is None:
            return
        gen = task.gen
        task.gen = None
        gen.close()
        self._finish(task, self.state.clock.task_time(), task.interrupt_text)

    # ---- queries -----------------------------------------------------------------------------------

    def get(self, upid: str) -> Task | None:
        self.tick()
        return self.tasks.get(upid)

    def all(self) -> list[Task]:
        self.tick()
        return list(self.tasks.values())

    def running_for(self, wid: str, types: tuple[str, ...]) -> list[Task]:
        return [t for t in self._running if t.upid.id == wid and t.upid.type in types]
