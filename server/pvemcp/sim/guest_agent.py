"""The QEMU guest agents inside the simulated VMs: which ones answer, and the commands they run.

PVE reaches a VM's agent over a virtio serial port (qemu-server ``PVE::QemuServer::Agent``,
``assert_agent_available``): the config must have an ``agent`` key, the VM must run, and the agent
service inside must answer ``guest-ping`` — else ``QEMU guest agent is not running``. The simulator
keeps the third fact here (``silent``: VMs whose agent is installed in the config but not answering;
tests and demos add to it) together with the processes ``agent/exec`` started, so that
``agent/exec-status`` can report them the way qemu-guest-agent does (``exited`` 0 until the command's
run time has passed, then ``exitcode`` and the captured output).

The commands a simulated guest "runs" are a small, deterministic model of a Debian VM: enough to show
the tool chain working (hostname, uptime, uname, df, os-release, echo, true/false, sleep); anything
else fails as ``execvp`` would, with exit code 127 from the shell or a spawn error without one.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field

from pvemcp.sim.state import Guest

# qemu-guest-agent caps captured output at 16 MiB (GUEST_EXEC_MAX_OUTPUT) and sets out-truncated.
MAX_CAPTURE = 16 * 1024 * 1024
OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\n'
    'VERSION="13 (trixie)"\nVERSION_CODENAME=trixie\nID=debian\n'
)
KERNEL = "6.12.57+deb13-amd64"


@dataclass
class ExecProcess:
    """One process started by ``guest-exec``: when it ends and what it leaves behind."""

    pid: int
    ends_at: float
    exitcode: int | None
    out: bytes = b""
    err: bytes = b""
    signal: int | None = None


@dataclass
class GuestAgents:
    """Agent facts of the cluster's VMs (by vmid) and the processes their agents started."""

    silent: set[int] = field(default_factory=set)
    processes: dict[tuple[int, int], ExecProcess] = field(default_factory=dict)
    next_pid: int = 1200

    def answering(self, guest: Guest) -> bool:
        return guest.vmid not in self.silent

    def start(self, guest: Guest, argv: list[str], stdin: bytes | None, now: float, uptime: int) -> ExecProcess:
        """Start ``argv`` in the guest; the result is fixed now, visible once its run time has passed."""
        self.next_pid += 7
        exitcode, out, err, seconds = run_command(guest, argv, stdin, uptime)
        proc = ExecProcess(self.next_pid, now + seconds, exitcode, out[:MAX_CAPTURE], err[:MAX_CAPTURE])
        self.processes[(guest.vmid, proc.pid)] = proc
        return proc

    def status(self, guest: Guest, pid: int, now: float) -> dict[str, int | str] | None:
        """``guest-exec-status`` as PVE returns it (output base64-decoded, booleans as 0/1), or None."""
        proc = self.processes.get((guest.vmid, pid))
        if proc is None:
            return None
        if now < proc.ends_at:
            return {"exited": 0}
        out: dict[str, int | str] = {"exited": 1}
        if proc.exitcode is not None:
            out["exitcode"] = proc.exitcode
        if proc.signal is not None:
            out["signal"] = proc.signal
        if proc.out:
            out["out-data"] = proc.out.decode("utf-8", "replace")
        if proc.err:
            out["err-data"] = proc.err.decode("utf-8", "replace")
        return out


def _uptime_text(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f" up {days} days, {hours:2d}:{rest // 60:02d},  1 user,  load average: 0.08, 0.03, 0.01\n"


def run_command(guest: Guest, argv: list[str], stdin: bytes | None, uptime: int) -> tuple[int, bytes, bytes, float]:
    """(exit code, stdout, stderr, seconds it runs) of ``argv`` in the simulated Debian guest."""
    if argv and argv[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and len(argv) >= 3 and argv[1] == "-c":
        try:
            argv = shlex.split(argv[2])
        except ValueError as exc:
            return 2, b"", f"sh: 1: Syntax error: {exc}\n".encode(), 0.1
        if not argv:
            return 0, b"", b"", 0.1
        shell = True
    else:
        shell = False
    prog = argv[0].rsplit("/", 1)[-1]
    args = argv[1:]
    if prog == "hostname":
        return 0, f"{guest.name}\n".encode(), b"", 0.1
    if prog == "uptime":
        return 0, _uptime_text(uptime).encode(), b"", 0.1
    if prog == "uname":
        text = f"Linux {guest.name} {KERNEL} #1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1 x86_64 GNU/Linux"
        return 0, ((text if "-a" in args else "Linux") + "\n").encode(), b"", 0.1
    if prog == "cat" and args == ["/etc/os-release"]:
        return 0, OS_RELEASE.encode(), b"", 0.1
    if prog == "cat" and not args and stdin is not None:
        return 0, stdin, b"", 0.1
    if prog == "cat":
        missing = "".join(f"cat: {a}: No such file or directory\n" for a in args)
        return 1, b"", missing.encode(), 0.1
    if prog == "df":
        gib = guest.maxdisk // 1024**3
        used = max(1, gib * 3 // 10)
        text = (
            "Filesystem      Size  Used Avail Use% Mounted on\n"
            f"/dev/sda1        {gib}G  {used}G  {gib - used}G  {used * 100 // max(gib, 1)}% /\n"
        )
        return 0, text.encode(), b"", 0.2
    if prog == "echo":
        return 0, (" ".join(args) + "\n").encode(), b"", 0.1
    if prog == "true":
        return 0, b"", b"", 0.1
    if prog == "false":
        return 1, b"", b"", 0.1
    if prog == "sleep" and args:
        try:
            return 0, b"", b"", float(args[0])
        except ValueError:
            return 1, b"", f"sleep: invalid time interval '{args[0]}'\n".encode(), 0.1
    if prog == "base64" and stdin is not None:
        return 0, base64.b64encode(stdin) + b"\n", b"", 0.1
    if shell:
        return 127, b"", f"sh: 1: {argv[0]}: not found\n".encode(), 0.1
    return -1, b"", b"", 0.0  # execvp failed: the caller turns this into the agent's error


def spawn_error(argv: list[str]) -> str:
    """qemu-guest-agent's error when the program cannot be spawned (glib's g_spawn text)."""
    return f"Failed to execute child process \u201c{argv[0]}\u201d (No such file or directory)"
