"""The competing Proxmox MCP servers that install from PyPI, and how to point each at our simulator.

Why this is data and not code in the benchmark: every peer names its settings differently
(``PROXMOX_HOST`` + ``PROXMOX_PORT`` vs ``PROXIMO_API_BASE_URL``, a token split in user / name / value
vs a token file), handles TLS differently, and exposes a different "list the guests" tool. Each entry
below was read off the peer's installed source (config loader, client, tool registry) and records:

- the pinned version (the one analysed in ``shared/notes/peers.md``), so reruns compare like with like;
- the Python it needs (``proximo-proxmox`` needs >= 3.12; it is skipped, and the table says so,
  when no such interpreter exists on the machine);
- its stdio entry point (the console script its wheel installs);
- the environment that points it at the simulator, using the peer's *own* configuration knobs;
- the comparable list call (the tool a model would call to "list the VMs").

Peers are installed with pip into throw-away virtualenvs under ``bench/.cache/peers/`` (git-ignored).
Nothing here is imported by pvemcp; nothing of the peers' code is copied.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PEER_DIR = CACHE / "peers"


@dataclass(frozen=True)
class SimTarget:
    """Where a simulator is and how to log in (the ``pvemcp sim`` banner, parsed)."""

    url: str  # https://127.0.0.1:PORT/api2/json
    fingerprint: str
    ca_file: str
    token_id: str  # user@realm!name
    token_secret: str

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]

    @property
    def port(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]

    @property
    def token_user(self) -> str:
        return self.token_id.split("!", 1)[0]

    @property
    def token_name(self) -> str:
        return self.token_id.split("!", 1)[1]

    @classmethod
    def from_banner(cls, banner: Mapping[str, Any]) -> SimTarget:
        return cls(
            url=str(banner["url"]),
            fingerprint=str(banner["fingerprint"]),
            ca_file=str(banner["ca_file"]),
            token_id=str(banner["token_id"]),
            token_secret=str(banner["token_secret"]),
        )


EnvFn = Callable[[SimTarget, Path], dict[str, str]]


@dataclass(frozen=True)
class Peer:
    """One competing server: what to install, how to start it, how to ask it for the guest list."""

    key: str  # short label for the table (the code used in shared/notes/peers.md)
    package: str
    version: str
    entry: str  # console script in the venv's bin/
    list_tool: str
    list_args: dict[str, Any]
    env: EnvFn
    tls: str  # how it reaches the simulator's self-signed HTTPS, in the table's words
    list_note: str = ""
    min_python: tuple[int, int] = (3, 10)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.key} {self.package}"


def _env_plus(sim: SimTarget, work: Path) -> dict[str, str]:
    # proxmox_mcp/config/loader.py: env fallback when PROXMOX_MCP_CONFIG is unset. verify_ssl is a
    # StrictBool (no CA-bundle knob); verify_ssl=false is refused unless PROXMOX_DEV_MODE=true.
    return {
        "PROXMOX_HOST": sim.host,
        "PROXMOX_PORT": sim.port,
        "PROXMOX_USER": sim.token_user,
        "PROXMOX_TOKEN_NAME": sim.token_name,
        "PROXMOX_TOKEN_VALUE": sim.token_secret,
        "PROXMOX_VERIFY_SSL": "false",
        "PROXMOX_DEV_MODE": "true",
        "PROXMOX_JOBS_SQLITE_PATH": str(work / "jobs.sqlite3"),
        "LOG_LEVEL": "WARNING",
    }


def _env_mcp_proxmox(sim: SimTarget, work: Path) -> dict[str, str]:
    # mcp_proxmox/config.py: PROXMOX_HOST/PORT/TOKEN_ID/TOKEN_SECRET; PROXMOX_VERIFY_SSL defaults to false.
    return {
        "PROXMOX_HOST": sim.host,
        "PROXMOX_PORT": sim.port,
        "PROXMOX_TOKEN_ID": sim.token_id,
        "PROXMOX_TOKEN_SECRET": sim.token_secret,
        "PROXMOX_VERIFY_SSL": "false",
    }


def _env_proxmox_mcp_server(sim: SimTarget, work: Path) -> dict[str, str]:
    # proxmox_mcp/client.py: PROXMOX_HOST/PORT, token as PROXMOX_USER + TOKEN_NAME + TOKEN_VALUE;
    # PROXMOX_VERIFY_SSL defaults to 0 (a bool, no CA-bundle knob).
    return {
        "PROXMOX_HOST": sim.host,
        "PROXMOX_PORT": sim.port,
        "PROXMOX_USER": sim.token_user,
        "PROXMOX_TOKEN_NAME": sim.token_name,
        "PROXMOX_TOKEN_VALUE": sim.token_secret,
        "PROXMOX_VERIFY_SSL": "0",
    }


def _env_proximo(sim: SimTarget, work: Path) -> dict[str, str]:
    # proximo/core/wire.py: PROXIMO_API_BASE_URL + PROXIMO_TOKEN_PATH (a 0600 file holding
    # USER@REALM!ID=SECRET), TLS verified, here pinned to the simulator's certificate fingerprint.
    token = work / "pve.token"
    token.write_text(f"{sim.token_id}={sim.token_secret}\n", encoding="utf-8")
    token.chmod(0o600)
    return {
        "PROXIMO_API_BASE_URL": sim.url,
        "PROXIMO_TOKEN_PATH": str(token),
        "PROXIMO_FINGERPRINT": sim.fingerprint,
    }


PEERS: tuple[Peer, ...] = (
    Peer(
        key="P2",
        package="proxmox-mcp-plus",
        version="0.6.7",
        entry="proxmox-mcp-plus",
        list_tool="get_vms",
        list_args={},
        env=_env_plus,
        tls="verify off (its dev_mode knob)",
        list_note="VMs only; containers need a second tool",
    ),
    Peer(
        key="P5",
        package="mcp-proxmox",
        version="1.2.3",
        entry="mcp-proxmox",
        list_tool="list_vms",
        list_args={},
        env=_env_mcp_proxmox,
        tls="verify off (its default)",
        list_note="VMs only; containers need a second tool",
    ),
    Peer(
        key="P7",
        package="proxmox-mcp-server",
        version="1.4.4",
        entry="proxmox-mcp-server",
        list_tool="get_cluster_resources",
        list_args={"type": "vm"},
        env=_env_proxmox_mcp_server,
        tls="verify off (its default)",
    ),
    Peer(
        key="P8",
        package="proximo-proxmox",
        version="0.49.1",
        entry="proximo",
        list_tool="proximo_read",
        list_args={"plane": "pve", "path": "/cluster/resources", "args": {"type": "vm"}},
        env=_env_proximo,
        tls="verified, fingerprint pin",
        min_python=(3, 12),
    ),
)


# ---------------------------------------------------------------------------------------------- install


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None  # e.g. a pyenv shim for a version that is installed but not selected
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python(minimum: tuple[int, int]) -> tuple[str, tuple[int, int]] | None:
    """A working interpreter >= ``minimum``: this one, ``python3.N`` on PATH, or a pyenv install.

    A pyenv shim can exist on PATH and still fail (the version is installed but not selected), so
    every candidate is run, not just looked up.
    """
    candidates: list[str] = [sys.executable]
    for minor in range(minimum[1], 16):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(found)
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.*/bin/python3"))
    candidates += sorted(glob.glob("/usr/bin/python3.*[0-9]")) + sorted(glob.glob("/usr/local/bin/python3.*[0-9]"))
    for candidate in candidates:
        version = _version_of(candidate)
        if version is not None and version >= minimum:
            return candidate, version
    return None


@dataclass(frozen=True)
class Installed:
    """A peer ready to run: its command and the interpreter version it runs on."""

    peer: Peer
    command: list[str]
    python_version: str
    venv: Path


def ensure_installed(peer: Peer, log: Callable[[str], None]) -> Installed | str:
    """Install ``peer`` (pinned) into its own venv unless already there; returns it, or why not."""
    found = find_python(peer.min_python)
    if found is None:
        want = ".".join(map(str, peer.min_python))
        return f"needs Python >= {want}; none found on this machine"
    python, version = found
    tag = f"py{version[0]}{version[1]}"
    venv = PEER_DIR / f"{peer.package}-{peer.version}-{tag}"
    marker = venv / ".installed"
    script = venv / "bin" / peer.entry
    if not (marker.is_file() and script.is_file()):
        log(f"installing {peer.package}=={peer.version} with Python {version[0]}.{version[1]} into {venv}")
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        logfile = venv.parent / f"{venv.name}.install.log"
        with logfile.open("w", encoding="utf-8") as out:
            steps = [
                [python, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 f"{peer.package}=={peer.version}"],
            ]  # fmt: skip
            for step in steps:
                try:
                    done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=900, check=False)
                except subprocess.TimeoutExpired:
                    return f"pip install timed out (log: {logfile})"
                if done.returncode != 0:
                    return f"install failed (exit {done.returncode}; log: {logfile})"
        if not script.is_file():
            return f"installed, but its entry point {peer.entry!r} is missing"
        marker.write_text(f"{peer.package}=={peer.version}\n", encoding="utf-8")
    return Installed(peer=peer, command=[str(script)], python_version=f"{version[0]}.{version[1]}", venv=venv)


def peer_env(peer: Peer, sim: SimTarget, work: Path) -> dict[str, str]:
    """A hermetic environment for one peer: PATH and locale only, HOME in its scratch dir, its settings.

    Nothing of the caller's environment leaks in (no stray PROXMOX_* variables, no real HOME where a
    peer might write state or read a dotenv file).
    """
    work.mkdir(parents=True, exist_ok=True)
    base = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    return {**base, "HOME": str(work), "PYTHONUNBUFFERED": "1", **peer.env(sim, work), **peer.extra}
