"""``pvemcp demo``: the simulated cluster and pvemcp on streamable HTTP, in one process.

It exists so that anyone can point a real MCP client at pvemcp within a minute, without a Proxmox
cluster and without risk: the simulator is served on loopback HTTPS with a fresh certificate, and the
App is configured exactly as a user would configure it (API token + fingerprint pin), so the demo
exercises the product path rather than a shortcut. ``--tour`` runs a scripted client session instead
of waiting for one.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import anyio

from pvemcp.door._core import App, load_app_config
from pvemcp.door.auth import load_bearer_tokens
from pvemcp.door.transports import HttpSettings, ensure_bindable, http_endpoint, parse_hostport

# Simulated time runs faster than real time so that a clone or a backup takes seconds, not minutes.
DEMO_TASK_SPEED = 5.0
TOUR_TASK_SPEED = 25.0
# Policy settings a user may set for the demo too; cluster settings are the simulator's.
_PASSTHROUGH_PREFIX = "PVEMCP_"
_NOT_PASSED = {"PVEMCP_CONFIG"}


def demo_env(sim_url: str, token_id: str, token_secret: str, fingerprint: str, audit_log: Path) -> dict[str, str]:
    """The environment a user would write to reach the simulator, plus their own policy settings."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_PASSTHROUGH_PREFIX) and k not in _NOT_PASSED}
    env.setdefault("PVEMCP_AUDIT_LOG", str(audit_log))
    env.update(
        {
            # as a user writes it (and other Proxmox tools expect it): the node's address, no API path
            "PROXMOX_URL": sim_url.removesuffix("/api2/json"),
            "PROXMOX_TOKEN_ID": token_id,
            "PROXMOX_TOKEN_SECRET": token_secret,
            "PROXMOX_FINGERPRINT": fingerprint,
        }
    )
    return env


# The part of the demo's environment that points a Proxmox client at the simulated cluster.
HANDOVER_KEYS = ("PROXMOX_URL", "PROXMOX_TOKEN_ID", "PROXMOX_TOKEN_SECRET", "PROXMOX_FINGERPRINT")


def handover_lines(env: Mapping[str, str]) -> list[str]:
    """``KEY=value`` lines, quoted for a shell (the token id's ``!`` included), loadable by ``. FILE``.

    The secret is the simulator's own, minted for this run and worthless once the demo stops; handing
    it over is the point, so ``pvemcp call``/``check`` and other Proxmox tools can reach the demo.
    """
    return [f"{key}={shlex.quote(env[key])}" for key in HANDOVER_KEYS]


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """Write the hand-over environment, readable by its owner only (it holds the demo's token secret)."""
    text = "# pvemcp demo: the simulated cluster, valid while the demo runs. Load with: set -a; . FILE; set +a\n"
    text += "\n".join(handover_lines(env)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def handover_text(env: Mapping[str, str], env_file: Path | None) -> str:
    """What the demo prints so the user can point other commands at the simulated cluster."""
    lines = ["", "The simulated Proxmox cluster, for `pvemcp call`/`check` and other Proxmox tools:"]
    if env_file is not None:
        lines.append(f"  set -a; . {shlex.quote(str(env_file))}; set +a    # written by --env-file")
    lines += [f"  export {line}" for line in handover_lines(env)]
    return "\n".join(lines)


def client_snippets(url: str, with_token: bool) -> str:
    """Copy-paste configuration for the common MCP hosts (the token itself is never printed)."""
    headers: Mapping[str, str] = {"Authorization": "Bearer ${PVEMCP_HTTP_TOKEN}"} if with_token else {}
    code = {"mcpServers": {"pvemcp": {"type": "http", "url": url, **({"headers": headers} if headers else {})}}}
    vscode = {"servers": {"pvemcp": {"type": "http", "url": url, **({"headers": headers} if headers else {})}}}
    remote_args = ["-y", "mcp-remote", url]
    if with_token:
        remote_args += ["--header", "Authorization:Bearer ${PVEMCP_HTTP_TOKEN}"]
    desktop = {"mcpServers": {"pvemcp": {"command": "npx", "args": remote_args}}}
    header_flag = ' --header "Authorization: Bearer $PVEMCP_HTTP_TOKEN"' if with_token else ""
    return "\n".join(
        [
            f"pvemcp demo: MCP endpoint {url}",
            "",
            "Claude Code (shell):",
            f"  claude mcp add --transport http pvemcp {url}{header_flag}",
            "Claude Code (.mcp.json):",
            _indent(json.dumps(code, indent=2)),
            "VS Code (.vscode/mcp.json):",
            _indent(json.dumps(vscode, indent=2)),
            "Claude Desktop (claude_desktop_config.json, via the mcp-remote bridge):",
            _indent(json.dumps(desktop, indent=2)),
            "",
            "Press Ctrl-C to stop.",
        ]
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


async def run_demo(http: str, seed: int, tour: bool, env_file: Path | None = None) -> int:
    """Run the simulator and the HTTP door; serve until interrupted, or run the tour and exit."""
    from pvemcp.sim import running_simulator

    host, port = parse_hostport(http)
    tokens = load_bearer_tokens()
    if not tour:
        ensure_bindable(host, port)  # a busy port is reported before the simulator starts, in two lines
    if env_file is not None and not env_file.resolve().parent.is_dir():
        raise ValueError(f"--env-file {env_file}: its directory does not exist; create it or choose another path")
    with tempfile.TemporaryDirectory(prefix="pvemcp-demo-") as scratch:
        async with running_simulator(seed=seed, task_speed=TOUR_TASK_SPEED if tour else DEMO_TASK_SPEED) as sim:
            env = demo_env(sim.url, sim.token_id, sim.token_secret, sim.fingerprint, Path(scratch) / "audit.jsonl")
            app = App(load_app_config(config_path=None, env=env))
            settings = HttpSettings.from_env(host, port, tokens)
            if tour:
                settings = await _free_if_taken(settings)
            async with http_endpoint(app, settings) as running:
                if tour:
                    from pvemcp.door.tour import run_tour

                    bearer = os.environ.get("PVEMCP_HTTP_TOKEN") if tokens is not None else None
                    return await run_tour(running.url, bearer=bearer)
                if env_file is not None:
                    write_env_file(env_file, env)
                snippets = client_snippets(running.url, tokens is not None)
                body, _, stop = snippets.rpartition("\n\n")
                print(f"{body}\n{handover_text(env, env_file)}\n\n{stop}", flush=True)
                print(f"(audit ledger of this demo: {env['PVEMCP_AUDIT_LOG']})", file=sys.stderr)
                await running.wait_stopped()
    return 0


async def _free_if_taken(settings: HttpSettings) -> HttpSettings:
    """The tour needs *a* port, not a particular one: fall back to any free port if the default is busy."""
    try:
        listener = await anyio.create_tcp_listener(local_host=settings.host, local_port=settings.port)
    except OSError:
        return HttpSettings(
            host=settings.host, port=0, tokens=settings.tokens, extra_allowed_hosts=settings.extra_allowed_hosts
        )
    await listener.aclose()
    return settings
