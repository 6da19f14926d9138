"""The type aliases every layer shares, defined once so that two spellings of one idea cannot drift."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

#: A JSON object as Python sees it: Proxmox's answers and arguments, JSON Schemas, tool results.
JsonDict = dict[str, Any]

#: How a long call reports progress: ``(done, total or None, message)``, awaited. The task poller calls it
#: while a Proxmox task runs; the MCP door forwards it to the client as ``notifications/progress``.
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]
