"""The type aliases every layer shares, defined once so that two spellings of one idea cannot drift."""

from __future__ import annotations

from typing import Any

#: A JSON object as Python sees it: Proxmox's answers and arguments, JSON Schemas, tool results.
JsonDict = dict[str, Any]
