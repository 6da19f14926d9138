"""The door's single import point for the core (``pvemcp.core.app`` contract, docs/CONTRACTS.md).

The contract names ``pvemcp.core.app`` as the home of these names; today several are defined in
submodules and only imported there, which strict mypy does not treat as an export (and
``load_app_config`` lives in ``pvemcp.core.config``). Importing them from their defining modules
here keeps the rest of the door on one line each and makes a later move a one-file change.
"""

from __future__ import annotations

from pvemcp.core.app import App
from pvemcp.core.catalog import ToolDef
from pvemcp.core.config import AppConfig, load_app_config
from pvemcp.core.tools.base import CallContext, ConfirmationNeeded, ToolResult, UnknownTool

__all__ = [
    "App",
    "AppConfig",
    "CallContext",
    "ConfirmationNeeded",
    "ToolDef",
    "ToolResult",
    "UnknownTool",
    "load_app_config",
]
