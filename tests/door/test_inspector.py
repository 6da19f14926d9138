"""Smoke test with the official MCP Inspector CLI (pinned 2.12.0) over stdio.

An independent client implementation (TypeScript SDK) checks what our own Python client cannot:
``--strict`` flags tool schemas that are not portable across clients, and the Inspector validates
structured results (error results included) against each tool's outputSchema. The Inspector is
installed by ``scripts/inspector.sh`` into a cache directory on first use; the test skips only when
npm is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import anyio
import pytest

from pvemcp.sim.runner import RunningSimulator

from .helpers import REPO, python

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not on PATH (the Inspector CLI needs Node.js)"),
]

SCRIPT = REPO / "scripts" / "inspector.sh"
INSTALL_BOUND_S = 600  # first use downloads the package; a bound, not a timed assertion


async def _inspector(sim: RunningSimulator, home: Path, *args: str) -> tuple[int, str, str]:
    server_env = {
        "PROXMOX_URL": sim.url,
        "PROXMOX_TOKEN_ID": sim.token_id,
        "PROXMOX_TOKEN_SECRET": sim.token_secret,
        "PROXMOX_FINGERPRINT": sim.fingerprint,
    }
    env_flags = [flag for key, value in server_env.items() for flag in ("-e", f"{key}={value}")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}
    env["PVEMCP_INSPECTOR_HOME"] = str(home)
    if "PVEMCP_INSPECTOR_DIR" in os.environ:
        env["PVEMCP_INSPECTOR_DIR"] = os.environ["PVEMCP_INSPECTOR_DIR"]
    command = ["bash", str(SCRIPT), "--cli", *env_flags, python(), "-m", "pvemcp", "serve", *args]
    with anyio.fail_after(INSTALL_BOUND_S):
        done = await anyio.run_process(command, env=env, check=False, cwd=REPO)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.timeout(INSTALL_BOUND_S + 120)
async def test_inspector_lists_strictly_and_calls_a_read_tool(sim: RunningSimulator, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()

    code, out, err = await _inspector(sim, home, "--method", "tools/list", "--strict")
    assert code == 0, out + err
    listed = json.loads(out)
    names = {t["name"] for t in listed["tools"]}
    assert {"guest_list", "guest_stop", "api_call"} <= names
    assert all(len(t["annotations"]) >= 4 for t in listed["tools"])

    args = ["--method", "tools/call", "--tool-name", "guest_list", "--tool-args-json", '{"limit": 2}']
    code, out, err = await _inspector(sim, home, *args, "--format", "json", "-q")
    assert code == 0, out + err
    result = json.loads(out)["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["total"] == len(sim.state.guests)
    assert len(result["structuredContent"]["items"]) == 2

    code, out, err = await _inspector(
        sim, home, "--protocol-era", "modern", "--method", "tools/call", "--tool-name", "cluster_status", "-q"
    )
    assert code == 0, out + err
    assert all(r.method == "GET" for r in sim.request_log)
