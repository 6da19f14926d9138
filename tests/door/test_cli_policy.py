"""The CLI on a bad policy or audit log: one or two lines saying what to fix, exit code 2, never a traceback;
``pvemcp check`` prints the effective policy and reports an audit log that cannot be opened."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from pvemcp.sim.runner import RunningSimulator

from .helpers import REPO, mutating, python, subprocess_env

CLUSTER = """
[clusters.prod]
url = "https://127.0.0.1:9"
token_id = "pvemcp@pve!mcp"
token_secret = "never-sent"
"""


def run(tmp_path: Path, *args: str, config: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pvemcp.toml"
    path.write_text(CLUSTER + config)
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}
    return subprocess.run(
        [python(), "-m", "pvemcp", *args, "--config", str(path)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def assert_short_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, done.stderr
    for needle in needles:
        assert needle in done.stderr


@pytest.mark.parametrize("command", [("serve",), ("call", "guest_list"), ("check",)])
@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ("[polcy]\nread_only = true\n", ("unknown key or table [polcy] (did you mean policy?)",)),
        ('[policy.rules]\nguest_delet = "deny"\n', ("policy.rules.guest_delet", "(did you mean guest_delete?)")),
    ],
)
def test_a_policy_typo_stops_every_command(
    tmp_path: Path, command: tuple[str, ...], config: str, needles: tuple[str, ...]
) -> None:
    assert_short_error(run(tmp_path, *command, config=config), *needles)


@pytest.mark.parametrize("command", [("serve",), ("call", "guest_list")])
def test_an_audit_log_that_cannot_be_created_stops_serve_and_call(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "var").write_text("a file where a directory should be")
    log = tmp_path / "var" / "log" / "pvemcp" / "audit.jsonl"
    done = run(tmp_path, *command, config=f'[policy]\naudit_log = "{log}"\n')
    assert_short_error(done, f"cannot create the directory {log.parent}", "PVEMCP_AUDIT_LOG")


def test_serve_creates_the_audit_log_directory(tmp_path: Path) -> None:
    """The README's /var/log/pvemcp/audit.jsonl on a fresh host: serve starts (stdio, EOF ends it)."""
    log = tmp_path / "var" / "log" / "pvemcp" / "audit.jsonl"
    done = run(tmp_path, "serve", config=f'[policy]\naudit_log = "{log}"\n')
    assert done.returncode == 0, done.stderr
    assert log.parent.is_dir() and log.with_name("audit.jsonl.head").is_file()


@pytest.mark.anyio
async def test_check_prints_the_effective_policy_and_fails_on_the_audit_log(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    (tmp_path / "var").write_text("a file where a directory should be")
    log = tmp_path / "var" / "audit.jsonl"
    done = await anyio.run_process(
        [python(), "-m", "pvemcp", "check"],
        env=subprocess_env(sim, PVEMCP_AUDIT_LOG=str(log), PVEMCP_READ_ONLY="1"),
        check=False,
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout.decode()
    assert done.returncode == 1, out + done.stderr.decode()
    assert "policy (also readable by the model as pve://policy):" in out
    assert "read-only   yes" in out and "(read_only: destructive tools are hidden and refused)" in out
    assert f"FAIL audit log   {log} cannot create the directory" in out
    assert "ok   version" in out  # the clusters are still checked
    assert "Traceback" not in done.stderr.decode()
    assert mutating(sim) == []
