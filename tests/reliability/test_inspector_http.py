"""The MCP Inspector CLI (an independent TypeScript client) lists and calls tools over streamable HTTP.

tests/door covers the Inspector over stdio; this is the HTTP leg, against the real ``pvemcp serve --http``
started by tests/reliability/stack.py in front of a simulator, in both protocol eras. ``--strict`` makes the
Inspector fail on tool schemas that are not portable across clients. The Inspector comes from
``scripts/inspector.sh`` (pinned, cached); the test skips only when npm is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import COUNTS, REPO, python, subprocess_env

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None, reason="npm is not on PATH (the Inspector CLI needs Node.js)"
)

INSPECTOR = REPO / "scripts" / "inspector.sh"
STACK = Path(__file__).with_name("stack.py")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """``pvemcp serve --http`` on a free port with a simulator behind it, for this module."""
    proc = subprocess.Popen(
        [python(), str(STACK), "--lifetime", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "stack.py did not start the server"
        yield str(json.loads(line)["url"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def inspector(home: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["bash", str(INSPECTOR), "--cli", *args],
        cwd=REPO,
        env=subprocess_env(PVEMCP_INSPECTOR_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=600,  # first use installs the Inspector; a bound, not a timed assertion
        check=False,
    )
    COUNTS["inspector: HTTP invocations"] += 1
    return done.returncode, done.stdout + done.stderr


@pytest.mark.timeout(900)
@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_lists_strictly_and_calls_tools_over_http(server_url: str, tmp_path: Path, era: str) -> None:
    common = ["--server-url", server_url, "--transport", "http", "--protocol-era", era]
    rc, out = inspector(tmp_path, *common, "--method", "tools/list", "--strict", "--format", "json", "-q")
    assert rc == 0, out[-3000:]
    listing, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])  # --strict appends its portability report
    names = {tool["name"] for tool in listing["result"]["tools"]}
    assert {"guest_list", "guest_status", "api_call"} <= names

    rc, out = inspector(
        tmp_path, *common, "--method", "tools/call", "--tool-name", "guest_list", "--tool-arg", "status=running", "-q"
    )
    assert rc == 0, out[-3000:]
    assert "guests" in out

    rc, out = inspector(
        tmp_path, *common, "--method", "tools/call", "--tool-name", "guest_status", "--tool-args-json", '{"vmid": 100}'
    )
    assert rc == 0, out[-3000:]
    assert "running" in out or "stopped" in out
