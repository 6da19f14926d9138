"""The door's single import point for the core: the names ``pvemcp.core.app`` exports (docs/CONTRACTS.md)."""

from __future__ import annotations

from pvemcp.core.app import (
    App,
    AppConfig,
    CallContext,
    ConfirmationNeeded,
    ToolDef,
    ToolResult,
    UnknownTool,
    load_app_config,
)

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
