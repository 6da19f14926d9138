"""``pvemcp serve`` starts with the cyclic collector paused and always resumes it (door/startup.py).

The pause is only worth having if it can never outlive the start-up: a server left without automatic
collection would grow on every reference cycle for as long as it runs. Each case runs the real CLI in a
fresh interpreter (the collector is process-wide state), with stdin at end of file so that a started
server serves nothing and returns, and reports what the collector looks like afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pvemcp.door.startup import pause_collector, resume_collector

PROBE = """
import gc, json, sys
from pvemcp.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def run_cli(*args: str, env: dict[str, str] | None = None, collector_off: bool = False) -> dict[str, object]:
    code = ("import gc; gc.disable()\n" if collector_off else "") + PROBE
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


CLUSTER = {
    "PROXMOX_URL": "https://127.0.0.1:1",
    "PROXMOX_TOKEN_ID": "root@pam!mcp",
    "PROXMOX_TOKEN_SECRET": "not-a-real-secret",
}


def test_serve_resumes_the_collector_and_freezes_the_startup_objects() -> None:
    out = run_cli("serve", env=CLUSTER)
    assert out["rc"] == 0
    assert out["enabled"] is True
    assert isinstance(out["frozen"], int) and out["frozen"] > 10_000  # the imports' objects, frozen once


def test_a_start_up_error_also_resumes_the_collector() -> None:
    out = run_cli("serve", "--config", "/nonexistent/pvemcp.toml", env=CLUSTER)
    assert out["rc"] == 2
    assert out["enabled"] is True


def test_other_commands_leave_the_collector_alone() -> None:
    out = run_cli("tools", "--size", env=CLUSTER)
    assert out["rc"] == 0
    assert out["enabled"] is True
    assert out["frozen"] == 0


def test_a_host_program_that_runs_without_the_collector_keeps_it_off() -> None:
    out = run_cli("serve", env=CLUSTER, collector_off=True)
    assert out["rc"] == 0
    assert out["enabled"] is False


@pytest.mark.parametrize("paused_first", [True, False])
def test_resume_is_idempotent(paused_first: bool) -> None:
    import gc

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        if paused_first:
            pause_collector()
            assert not gc.isenabled()
        resume_collector()
        resume_collector()
        assert gc.isenabled()
        assert (gc.get_freeze_count() > frozen) is paused_first
    finally:
        gc.unfreeze()
        gc.enable()
