"""The door's single import point for the core (docs/CONTRACTS.md, docs/ARCHITECTURE.md).

Everything a door module (MCP server, CLI commands, check, token recipe) uses of the core is named here, so
the core's interface to the outside is one file; ``tests/test_boundaries.py`` refuses any other route.
The names of ``pvemcp.core.app`` (the pipeline) are imported at once. The rest are loaded on first use
(PEP 562 ``__getattr__``): a stdio server that never runs ``check`` or pulls a spec does not import the
HTTP client, the privilege tables or the spec puller at start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pvemcp.core.app import (
    INSTRUCTIONS,
    App,
    AppConfig,
    CallContext,
    ConfirmationNeeded,
    ToolDef,
    ToolResult,
    UnknownTool,
    load_app_config,
)
from pvemcp.core.policy._canonical import canonical_bytes

if TYPE_CHECKING:
    pass

#: name -> the core module that defines it, imported when the name is first asked for.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("check_names", "describe_policy", "preflight"), "pvemcp.core.policy.effective"),
    "PveClient": "pvemcp.core.pve.client",
    **dict.fromkeys(("DEFAULT_PORT", "ClientConfig", "ConfigError"), "pvemcp.core.pve.config"),
    "PveError": "pvemcp.core.pve.errors",
    **dict.fromkeys(
        ("LEVEL_NAMES", "NO", "PARTLY", "YES", "Requirement", "permission_level", "recipe_requirements", "root_only"),
        "pvemcp.core.pve.privileges",
    ),
    **dict.fromkeys(
        (
            "HeadAnchor",
            "LedgerError",
            "default_head_path",
            "default_key_path",
            "load_key",
            "parse_head",
            "VerifyReport",
            "reanchor",
            "verify",
        ),
        "pvemcp.core.policy.ledger",
    ),
    "face": "pvemcp.core.render",
    **dict.fromkeys(
        (
            "SPEC_ENV",
            "PullError",
            "build_spec_document",
            "bundled_spec_path",
            "compare",
            "fetch_apidoc_js",
            "parse_apidoc_js",
            "pull",
            "spec_dir",
            "use_pulled_spec",
        ),
        "pvemcp.core.spec_pull",
    ),
    "verify_database": "pvemcp.core.state.postgres",
    "request_state_key": "pvemcp.core.state.secret",
    "TokenSpender": "pvemcp.core.state.store",
}


def __getattr__(name: str) -> Any:
    """Load a lazily exported core name (module ``__getattr__``, PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "INSTRUCTIONS",
    "App",
    "AppConfig",
    "CallContext",
    "ConfirmationNeeded",
    "ToolDef",
    "ToolResult",
    "UnknownTool",
    "canonical_bytes",
    "load_app_config",
    *_LAZY,
]
