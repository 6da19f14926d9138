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
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import anyio

from pvemcp.door._core import App, load_app_config
from pvemcp.door.auth import load_bearer_tokens
from pvemcp.door.transports import HttpSettings, http_endpoint, parse_hostport

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
            "PROXMOX_URL": sim_url,
            "PROXMOX_TOKEN_ID": token_id,
            "PROXMOX_TOKEN_SECRET": token_secret,
            "PROXMOX_FINGERPRINT": fingerprint,
        }
    )
    return env


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


async def run_demo(http: str, seed: int, tour: bool) -> int:
    """Run the simulator and the HTTP door; serve until interrupted, or run the tour and exit."""
    from pvemcp.sim import running_simulator

    host, port = parse_hostport(http)
    tokens = load_bearer_tokens()
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
                print(client_snippets(running.url, tokens is not None), flush=True)
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
