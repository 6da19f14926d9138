"""CLI handlers behind ``pvemcp serve | demo | tools | call | check`` (routed by ``pvemcp.cli``).

Each handler parses nothing itself (argparse did), builds the App from the configuration, runs one
async entry point and maps the outcome to an exit code: 0 success, 1 the action failed, 2 the
configuration or the invocation is wrong. Only ``tools``, ``call`` and ``demo`` write to stdout (it
is their output); ``serve`` never does, because on stdio stdout is the protocol wire.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import anyio

from pvemcp.door._core import (
    App,
    AppConfig,
    CallContext,
    ConfirmationNeeded,
    ToolDef,
    ToolResult,
    check_names,
    load_app_config,
    preflight,
)

logger = logging.getLogger("pvemcp")

LOG_LEVEL_ENV = "PVEMCP_LOG_LEVEL"
# Used only by `pvemcp tools` when no cluster is configured: the tool list needs no network.
_PLACEHOLDER_CLUSTER = {
    "PROXMOX_URL": "https://pve.invalid:8006",
    "PROXMOX_TOKEN_ID": "root@pam!placeholder",
    "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
}


def setup_logging(default: str = "WARNING") -> None:
    """Log to stderr only (stdout is the stdio wire); level from ``PVEMCP_LOG_LEVEL``."""
    level_name = os.environ.get(LOG_LEVEL_ENV, default).upper()
    level = logging.getLevelNamesMapping().get(level_name, logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _fail(message: str, code: int = 2) -> int:
    print(f"pvemcp: {message}", file=sys.stderr)
    return code


def _load_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> AppConfig:
    """The configuration; a schema pulled from the configured cluster (``pvemcp spec pull``) is used from here on."""
    from pvemcp.door._core import use_pulled_spec

    config = load_app_config(config_path=getattr(args, "config", None), env=os.environ if env is None else env)
    use_pulled_spec(config.clusters)
    return config


class StartupError(ValueError):
    """The server cannot start with this configuration; the message is for a person, one or two lines.

    A ``ValueError``, like every configuration error, so each command's existing handler reports it.
    """


def _started_app(config: AppConfig) -> App:
    """The App with its catalog built, so a broken schema, catalog or policy fails here, before serving.

    The data files can be replaced by the operator (``PVEMCP_SPEC``, ``PVEMCP_TOOLS``, a pulled schema),
    so a missing or corrupt one is a start-up error, not a traceback.
    """
    import json

    from pvemcp.dialect.resources import data_file

    app = App(config)
    try:
        app.tools()
    except json.JSONDecodeError as exc:
        raise StartupError(
            f"the API schema {data_file('openapi.json')} is not valid JSON ({exc.msg}, line {exc.lineno}).\n"
            "Unset PVEMCP_SPEC, or fetch it again with `pvemcp spec pull --refresh`"
        ) from None
    except OSError as exc:
        raise StartupError(
            f"cannot read {exc.filename}: {exc.strerror}.\n"
            "Check PVEMCP_SPEC and PVEMCP_TOOLS (or tools_file in the config file), or unset them"
        ) from None
    return app


# -- serve ----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve MCP on stdio (default) or streamable HTTP (``--http HOST:PORT``)."""
    from pvemcp.door.auth import AuthConfigError, load_bearer_tokens
    from pvemcp.door.startup import resume_collector
    from pvemcp.door.transports import HttpConfigError, HttpSettings, parse_hostport, serve_http, serve_stdio

    setup_logging("INFO" if args.http else "WARNING")
    settings: HttpSettings | None = None
    try:
        app = _started_app(_load_config(args))  # a broken schema or catalog fails here, not at tools/list
        preflight(app)  # a broken policy or audit log fails here, at startup, not at the first call
        if args.http:
            host, port = parse_hostport(args.http)
            settings = HttpSettings.from_env(host, port, load_bearer_tokens())
    except (AuthConfigError, HttpConfigError, ValueError) as exc:
        return _fail(str(exc))
    finally:
        resume_collector()  # paused by the CLI for the imports above (door/startup.py says why)
    try:
        if settings is None:
            anyio.run(serve_stdio, app)
        else:
            anyio.run(serve_http, app, settings)
    except KeyboardInterrupt:
        pass
    except HttpConfigError as exc:  # the port is busy or not ours to bind
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot serve on {args.http}: {exc.strerror or exc}")
    except ValueError as exc:  # e.g. the shared state (state_url) cannot be reached
        return _fail(str(exc))
    return 0


# -- demo -----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """The simulator plus the server on streamable HTTP; ``--tour`` runs a scripted session instead."""
    from pathlib import Path

    from pvemcp.door.demo import run_demo

    setup_logging("WARNING")
    env_file = Path(args.env_file) if getattr(args, "env_file", None) else None
    try:
        return anyio.run(run_demo, args.http, args.seed, args.tour, env_file)
    except KeyboardInterrupt:
        return 0
    except ValueError as exc:
        return _fail(str(exc))


# -- tools ----------------------------------------------------------------------------------------


def _app_for_listing(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> App:
    """The App whose tool list is printed; without any cluster configured, a placeholder one.

    Listing needs no network, and ``pvemcp tools --size`` must work on a fresh checkout (CI, README).
    """
    source = os.environ if environ is None else environ
    try:
        return App(_load_config(args, source))
    except ValueError as exc:
        if "no Proxmox cluster configured" not in str(exc):
            raise
        env = {k: v for k, v in source.items() if not k.startswith("PROXMOX_")}
        return App(_load_config(args, {**env, **_PLACEHOLDER_CLUSTER}))


def cmd_tools(args: argparse.Namespace) -> int:
    """Print the tool list: a table (default), the tools/list payload (``--json``) or its size."""
    from pvemcp.door.server import tool_to_wire

    setup_logging()
    try:
        app = _app_for_listing(args)
        defs = _started_app(app.config).tools()
    except ValueError as exc:
        return _fail(str(exc))
    wire = [tool_to_wire(t) for t in defs]
    try:
        _print_tools(args, defs, wire)
    except BrokenPipeError:  # `pvemcp tools | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_tools(args: argparse.Namespace, defs: list[ToolDef], wire: list[Any]) -> None:
    import mcp_types as types

    from pvemcp.door.server import compact_tool_payload

    if args.json:
        payload = types.ListToolsResult(tools=wire).model_dump(by_alias=True, mode="json", exclude_none=True)
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    elif args.size:
        print(len(compact_tool_payload(wire)))
    else:
        width = max((len(t.name) for t in defs), default=4)
        print(f"{'TOOL':<{width}}  {'RISK':<11}  TITLE")
        for t in defs:
            print(f"{t.name:<{width}}  {t.risk:<11}  {t.title}")


# -- call -----------------------------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    """Run one tool in-process and print its structured result as JSON.

    Exit codes: 0 done, 1 the tool reported an error, 2 bad invocation or configuration, 3 the
    action needs confirmation and nothing was done. In a terminal the human at the keyboard *is*
    the user to ask, so the question is put on the terminal (the CLI's elicitation). Without a
    terminal the core's token fallback answers with a preview; its token is bound to this process,
    so a later ``pvemcp call`` cannot redeem it — scripts should drive pvemcp through an MCP client.
    """
    setup_logging()
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        return _fail(f"arguments must be a JSON object: {exc.msg} at position {exc.pos}")
    if not isinstance(arguments, dict):
        return _fail("arguments must be a JSON object, e.g. '{\"vmid\": 100}'")
    try:
        app = _started_app(_load_config(args))
        preflight(app)
    except ValueError as exc:
        return _fail(str(exc))
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    return anyio.run(_call, app, args.tool, arguments, interactive, bool(getattr(args, "yes", False)))


async def _call(app: App, tool: str, arguments: dict[str, Any], interactive: bool, assume_yes: bool = False) -> int:
    async def progress(done: float, total: float | None, message: str) -> None:
        of = f"/{total:g}" if total else ""
        print(f"… {done:g}{of} {message}", file=sys.stderr)

    ctx = CallContext(caller="cli", can_elicit=interactive or assume_yes, progress=progress)
    async with app:
        outcome = await app.call(tool, arguments, ctx)
        if isinstance(outcome, ConfirmationNeeded):
            if assume_yes:
                print(f"{outcome.question} (confirmed by --yes)", file=sys.stderr)
            answer = assume_yes or await anyio.to_thread.run_sync(_ask_terminal, outcome.question)
            if answer:
                confirmed = replace(ctx, confirmed=True, confirmed_plan=outcome.plan_digest, call_id=outcome.call_id)
                outcome = await app.call(outcome.tool, outcome.arguments, confirmed)
            else:
                outcome = await app.record_declined(outcome.tool, outcome.arguments, ctx, "decline")
    if isinstance(outcome, ToolResult):
        shown = outcome.structured or {"error" if outcome.is_error else "result": outcome.text}
        print(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
        print(outcome.text, file=sys.stderr)
        if outcome.is_error:
            return 1
        if "confirmation" in outcome.structured:
            print(
                "pvemcp: nothing was done: this action needs confirmation. Run `pvemcp call` in a terminal to "
                "answer the question, pass --yes, or use an MCP client (the token is valid only inside this process).",
                file=sys.stderr,
            )
            return 3
        return 0
    if isinstance(outcome, ConfirmationNeeded):
        return _fail(f"{tool} needs confirmation again; nothing more was done", 1)
    return _fail(f"unknown tool {tool!r}; `pvemcp tools` lists them")


def _ask_terminal(question: str) -> bool:
    """Blocking prompt on the terminal (run in a worker thread, never on the event loop)."""
    print(question, file=sys.stderr)
    try:
        reply = input("Proceed? [y/N] ")
    except EOFError:
        return False
    return reply.strip().lower() in ("y", "yes")


# -- check ----------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """Reachability, TLS, auth, PVE version and what the token may do, for every configured cluster."""
    from pvemcp.door.check import run_check

    setup_logging()
    try:
        config = _load_config(args)
        app = _started_app(config)
        check_names(app)  # the audit log is reported by the check itself
    except ValueError as exc:
        return _fail(str(exc))
    return anyio.run(run_check, config, app)


# -- token-recipe ---------------------------------------------------------------------------------


def cmd_token_recipe(args: argparse.Namespace) -> int:
    """Print the ``pveum`` commands creating a token with exactly the privileges the listed tools need."""
    from pvemcp.door._core import ConfigError
    from pvemcp.door.token_recipe import compute_recipe, render

    setup_logging()
    env = {**os.environ, "PVEMCP_READ_ONLY": "1"} if args.read_only else os.environ
    if not re.fullmatch(r"[^\s@!:=/]+@[A-Za-z][A-Za-z0-9.\-_]+", args.user) or not re.fullmatch(
        r"[A-Za-z][A-Za-z0-9.\-_]+", args.token
    ):
        return _fail("--user must look like name@realm (e.g. pvemcp@pve) and --token like mcp")
    try:
        app = _app_for_listing(args, env)
        tools = app.tools()
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc))
    toolsets = list(dict.fromkeys(t.toolset for t in tools))
    recipe = compute_recipe(tools, app.spec)
    print(render(recipe, role=args.role, user=args.user, token=args.token, toolsets=toolsets))
    return 0
