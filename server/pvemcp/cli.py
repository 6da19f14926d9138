"""Command line of pvemcp: ``pvemcp serve | demo | sim | check | token-recipe | tools | call | audit | spec``.

Each subcommand's implementation is imported only when that subcommand runs, so that
``pvemcp --help`` and a stdio ``serve`` do not pay for the simulator, the generator or HTTP.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from pvemcp import __version__

# subcommand -> "module:function"; the function takes the parsed namespace and returns an exit code.
_HANDLERS: dict[str, str] = {
    "serve": "pvemcp.door.commands:cmd_serve",
    "demo": "pvemcp.door.commands:cmd_demo",
    "tools": "pvemcp.door.commands:cmd_tools",
    "call": "pvemcp.door.commands:cmd_call",
    "check": "pvemcp.door.commands:cmd_check",
    "token-recipe": "pvemcp.door.commands:cmd_token_recipe",
    "sim": "pvemcp.sim.serve:cmd_sim",
    "audit": "pvemcp.door.admin:cmd_audit",
    "spec": "pvemcp.door.admin:cmd_spec",
}


def _add_sim_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    p.add_argument("--port", type=int, default=8006, help="port to bind (0 = any free port)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated cluster")
    p.add_argument("--nodes", type=int, default=3, help="number of nodes")
    p.add_argument("--guests", type=int, default=12, help="number of guests")
    p.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    p.add_argument("--task-speed", type=float, default=1.0, help="task speed factor (10 = 10x faster)")
    p.add_argument("--faults", default="", help="fault spec, e.g. 'error=0.1:/nodes/*/qemu,offline=pve3'")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pvemcp", description="A safe, lean MCP server for Proxmox VE.")
    parser.add_argument("--version", action="version", version=f"pvemcp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP instead of stdio")
    p.add_argument("--config", help="config file (TOML); default $PVEMCP_CONFIG")

    p = sub.add_parser("demo", help="run the simulator and the server on streamable HTTP")
    p.add_argument("--http", metavar="HOST:PORT", default="127.0.0.1:8765")
    p.add_argument("--tour", action="store_true", help="run a scripted client session and exit")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--env-file", metavar="PATH", help="also write the simulated cluster's PROXMOX_* environment to PATH"
    )

    p = sub.add_parser("sim", help="serve the simulated Proxmox VE cluster over HTTPS")
    _add_sim_arguments(p)

    p = sub.add_parser("tools", help="list the tools the server registers")
    p.add_argument("--json", action="store_true", help="print the tools/list payload")
    p.add_argument("--size", action="store_true", help="print the model-visible size in characters")
    p.add_argument("--config", help="config file (TOML)")

    p = sub.add_parser("call", help="call one tool from the command line")
    p.add_argument("tool")
    p.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments")
    p.add_argument("--config", help="config file (TOML)")
    p.add_argument(
        "--yes", action="store_true", help="the operator confirms a call that needs confirmation (still audited)"
    )

    p = sub.add_parser("check", help="check reachability, TLS, auth, version and privileges")
    p.add_argument("--config", help="config file (TOML)")

    p = sub.add_parser("token-recipe", help="print the pveum commands for a least-privilege API token")
    p.add_argument("--config", help="config file (TOML): its toolsets and read_only decide the tools")
    p.add_argument("--read-only", action="store_true", help="only the read tools (like PVEMCP_READ_ONLY=1)")
    p.add_argument("--role", default="PVEMCP", help="name of the role to create (default PVEMCP)")
    p.add_argument("--user", default="pvemcp@pve", help="user that owns the token (default pvemcp@pve)")
    p.add_argument("--token", default="mcp", help="token name (default mcp)")

    p = sub.add_parser("audit", help="audit ledger commands")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = audit_sub.add_parser("verify", help="verify the HMAC chain of a ledger and its head anchor")
    v.add_argument("path", nargs="?", help="ledger path (default $PVEMCP_AUDIT_LOG)")
    v.add_argument("--key-file", help="HMAC key file (default: beside the ledger)")
    v.add_argument("--expect-head", metavar="SEQ:MAC", help="a head printed earlier by `pvemcp audit head`")
    h = audit_sub.add_parser("head", help="verify, then print the ledger's head (SEQ:MAC) to keep elsewhere")
    h.add_argument("path", nargs="?", help="ledger path (default $PVEMCP_AUDIT_LOG)")
    h.add_argument("--key-file", help="HMAC key file (default: beside the ledger)")
    h.add_argument("--reanchor", action="store_true", help="rewrite the head anchor from the ledger first")

    p = sub.add_parser("spec", help="API schema commands: build openapi.json, pull the cluster's own")
    spec_sub = p.add_subparsers(dest="spec_command", metavar="ACTION", required=True)
    b = spec_sub.add_parser("build", help="generate openapi.json from the official apidoc.json")
    b.add_argument("--from", dest="source", required=True, help="path of apidoc.json")
    b.add_argument("--out", default="openapi.json", help="output path")
    pl = spec_sub.add_parser("pull", help="fetch the cluster's own API schema (apidoc.js) and use it from now on")
    pl.add_argument("--config", help="config file (TOML)")
    pl.add_argument("--cluster", help="only this configured cluster")
    pl.add_argument("--refresh", action="store_true", help="fetch again even if this PVE version is cached")
    return parser


def _resolve(target: str) -> Callable[[argparse.Namespace], int]:
    module_name, func_name = target.split(":")
    func: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module_name), func_name)
    return func


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "serve":  # its imports run without the cyclic collector; cmd_serve resumes it
        from pvemcp.door.startup import pause_collector

        pause_collector()
    return _resolve(_HANDLERS[args.command])(args)
