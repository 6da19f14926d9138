"""The first hour of a newcomer, as a person runs it: the demo hands its cluster over, start-up errors are short.

``pvemcp demo --env-file`` must write exactly the environment that points ``pvemcp check`` and ``pvemcp call``
at the simulated cluster, loaded the way the demo says (``set -a; . FILE``) by a real bash, so the quoting of
``root@pam!pvemcp`` is part of what is tested. A busy port must give two lines and exit 2, not a traceback.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import REPO, python

# Generous: the demo starts a simulator and a server on a shared, loaded machine. A deadline, not an assertion.
START_DEADLINE_S = 120


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    env_file = tmp_path / "demo.env"
    proc = subprocess.Popen(
        [python(), "-m", "pvemcp", "demo", "--http", "127.0.0.1:0", "--env-file", str(env_file)],
        env={**_clean_env(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not env_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if not env_file.exists():
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the demo wrote no env file:\n{out}\n{err}")
        yield proc, env_file
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=_clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def _pvemcp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _run([python(), "-m", "pvemcp", *args], env)


def _with_env_file(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``pvemcp ARGS`` in a bash that loaded the file exactly as the demo tells a person to."""
    script = 'set -a; . "$1"; set +a; shift; exec "$@"'
    return _run(["bash", "-c", script, "bash", str(env_file), python(), "-m", "pvemcp", *args])


def test_demo_hands_its_cluster_over_to_check_and_call(demo: tuple[subprocess.Popen[str], Path]) -> None:
    _, env_file = demo
    assert env_file.stat().st_mode & 0o077 == 0, "the env file holds a token secret: owner-only"
    keys = [line.split("=", 1)[0] for line in env_file.read_text().splitlines() if not line.startswith("#")]
    assert keys == ["PROXMOX_URL", "PROXMOX_TOKEN_ID", "PROXMOX_TOKEN_SECRET", "PROXMOX_FINGERPRINT"]
    assert re.search(r"^PROXMOX_URL=https://127\.0\.0\.1:\d+$", env_file.read_text(), re.M), "host:port, no API path"

    check = _with_env_file(env_file, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok   tls         certificate matches the pinned fingerprint" in check.stdout
    assert "root@pam!pvemcp accepted" in check.stdout

    listed = _with_env_file(env_file, "call", "guest_list", '{"limit": 3}')
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["total"] >= 3 and len(data["items"]) == 3


def test_demo_prints_the_same_environment(demo: tuple[subprocess.Popen[str], Path]) -> None:
    proc, env_file = demo
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    written = [line for line in env_file.read_text().splitlines() if not line.startswith("#")]
    printed = [line.strip().removeprefix("export ") for line in out.splitlines() if line.strip().startswith("export ")]
    assert printed == written
    assert f". {env_file}" in out


def _busy_port() -> tuple[socket.socket, int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder, holder.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_busy_port_is_two_lines_and_exit_2(command: str) -> None:
    holder, port = _busy_port()
    env = {
        **_clean_env(),
        "PROXMOX_URL": "https://pve.invalid:8006",
        "PROXMOX_TOKEN_ID": "root@pam!placeholder",
        "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
    }
    with holder:
        done = _pvemcp(command, "--http", f"127.0.0.1:{port}", env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, done.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
    assert "--http 127.0.0.1:" in lines[1]


_CLUSTER = {
    "PROXMOX_URL": "https://pve.invalid:8006",
    "PROXMOX_TOKEN_ID": "root@pam!placeholder",
    "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
}


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"PVEMCP_CONFIG": "/"}, ["serve"], "cannot be read"),
        ({**_CLUSTER, "PVEMCP_SPEC": "/nonexistent/openapi.json"}, ["serve"], "PVEMCP_SPEC"),
        ({**_CLUSTER, "PVEMCP_TOOLS": "/nonexistent/tools.yaml"}, ["call", "guest_list"], "PVEMCP_TOOLS"),
        ({**_CLUSTER, "PVEMCP_SPEC": str(REPO / "tools.yaml")}, ["check"], "not valid JSON"),
        ({**_CLUSTER, "PVEMCP_HTTP_TOKEN": "x" * 32}, ["serve", "--http", "192.0.2.1:8765"], "not one of this machine"),
        ({**_CLUSTER, "PROXMOX_VERIFY_TLS": "maybe"}, ["serve"], "PROXMOX_VERIFY_TLS"),
        ({**_CLUSTER}, ["serve", "--http", "127.0.0.1:99999"], "port out of range"),
    ],
)
def test_start_up_errors_are_short(env: dict[str, str], args: list[str], says: str) -> None:
    """What is wrong and what to do, in one or two lines, exit 2: never a traceback."""
    done = _pvemcp(*args, env={**_clean_env(), **env})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and 1 <= len(lines) <= 2, done.stderr
    assert says in done.stderr


def test_env_file_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    done = _pvemcp("demo", "--http", "127.0.0.1:0", "--env-file", str(tmp_path / "no" / "demo.env"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr
