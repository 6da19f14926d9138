"""Shared pieces of the reliability suite: configurations, request-log witnesses and the case counter.

The simulator's request log is the witness of every claim here: "nothing was sent" means no new
record in it, "never sent twice" means no mutating (method, path) appears twice. The counter exists
because a fuzz suite that silently ran zero cases would look exactly like one that passed; the
totals are printed in pytest's terminal summary and stored in pytest's cache.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import mcp_types as types

from pvemcp.core.app import App
from pvemcp.core.config import load_app_config
from simenv import cluster_env as cluster_env
from simenv import ticket_env as ticket_env

REPO = Path(__file__).resolve().parents[2]

# Cases run per category, across the whole session (printed by conftest.pytest_terminal_summary).
COUNTS: Counter[str] = Counter()
# Measured figures worth reading (latency percentiles, memory): printed in the same summary, never asserted.
FIGURES: dict[str, str] = {}

# Every mutating tool only previews: write and destructive calls need confirmation, the in-memory
# client cannot elicit, so the token fallback answers with a preview and a token we never send back.
CONFIRM_EVERYTHING = """
[policy]
confirm_fallback = "token"

[policy.rules]
read = "allow"
write = "confirm"
destructive = "confirm"
"""

# Requests that authenticate rather than act: a ticket login is a POST that changes nothing.
AUTH_PATHS = frozenset({"/access/ticket"})


def make_app(env: Mapping[str, str], policy_toml: str | None = None, tmp: Path | None = None) -> App:
    """An App from ``env``, optionally with a policy file written under ``tmp``."""
    config_path: Path | None = None
    if policy_toml is not None:
        assert tmp is not None, "a policy needs a directory to live in"
        config_path = tmp / "pvemcp.toml"
        config_path.write_text(policy_toml, encoding="utf-8")
    return App(load_app_config(config_path=config_path, env=dict(env)))


def mutations(records: Iterable[Any]) -> list[Any]:
    """Records that could change the cluster: every non-GET except authentication."""
    return [r for r in records if r.method != "GET" and r.path not in AUTH_PATHS]


def repeated_mutations(records: Iterable[Any]) -> list[tuple[str, str]]:
    """Mutating (method, path) pairs that reached the simulator more than once."""
    seen = Counter((r.method, r.path) for r in mutations(records))
    return sorted(key for key, n in seen.items() if n > 1)


def text_of(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment minus PROXMOX_/PVEMCP_ leftovers, plus ``extra``, for child processes."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


def python() -> str:
    return sys.executable


def free_port() -> int:
    """A port free on 127.0.0.1 right now (a child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepting(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_http_server(port: int, env: Mapping[str, str], out: IO[Any] | int) -> subprocess.Popen[bytes]:
    """The real command, ``pvemcp serve --http 127.0.0.1:PORT``, as a child writing its output to ``out``."""
    return subprocess.Popen(
        [sys.executable, "-m", "pvemcp", "serve", "--http", f"127.0.0.1:{port}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
    )


def stop_processes(procs: Sequence[subprocess.Popen[Any]], timeout: float) -> None:
    """SIGTERM every child still running, then wait ``timeout`` seconds for each before killing it."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
