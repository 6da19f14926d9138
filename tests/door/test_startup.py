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
from typing import Any

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


def run_probe(code: str) -> list[Any]:
    """Run ``code`` in a fresh interpreter (the collector is process-wide) and return its last JSON line."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ)
    )
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-3000:]
    result: list[Any] = json.loads(proc.stdout.strip().splitlines()[-1])
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


def test_resume_is_idempotent_and_freezes_once_per_process() -> None:
    """The first resume freezes what exists; a later pause and resume (the warm-up's) only switch the
    collector off and on, so the garbage of requests served meanwhile is never made permanent."""
    out = run_probe(
        """
import gc, json
from pvemcp.door.startup import pause_collector, resume_collector
steps = []
resume_collector()  # nothing paused: nothing happens
steps.append((gc.isenabled(), gc.get_freeze_count()))
pause_collector(); steps.append((gc.isenabled(), gc.get_freeze_count()))
resume_collector(); resume_collector(); first = gc.get_freeze_count(); steps.append((gc.isenabled(), first))
garbage = [[] for _ in range(1000)]
pause_collector(); resume_collector(); steps.append((gc.isenabled(), gc.get_freeze_count() - first))
print(json.dumps(steps))
"""
    )
    (untouched, paused, resumed, again) = out
    assert untouched == [True, 0]
    assert paused == [False, 0]
    assert resumed[0] is True and resumed[1] > 1000
    assert again == [True, 0]  # no second freeze


def test_the_warm_up_pauses_and_resumes_the_collector_without_freezing_again() -> None:
    """Door.warm_up runs its CPU part with the collector paused and always turns it back on."""
    out = run_probe(
        """
import asyncio, gc, json, os
from pvemcp.door import startup
from pvemcp.door._core import App, load_app_config
from pvemcp.door.server import Door
startup._frozen = True  # as after a CLI start-up
env = {"PROXMOX_URL": "https://127.0.0.1:1", "PROXMOX_TOKEN_ID": "root@pam!mcp", "PROXMOX_TOKEN_SECRET": "x",
       "PROXMOX_CONNECT_TIMEOUT": "1"}
seen = []
async def main():
    app = App(load_app_config(config_path=None, env=env))
    async with app:
        door = Door(app, caller="stdio")
        original = app.warm_code
        async def watched():
            seen.append(gc.isenabled())
            await original()
        app.warm_code = watched
        try:
            await door.warm_up()
        except Exception as exc:
            seen.append(type(exc).__name__)
asyncio.run(main())
print(json.dumps([seen, gc.isenabled(), gc.get_freeze_count()]))
"""
    )
    seen, enabled, frozen = out
    assert seen[0] is False  # the CPU part ran with the collector paused
    assert enabled is True and frozen == 0
