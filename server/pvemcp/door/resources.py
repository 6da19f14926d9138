"""MCP resources: what an assistant may read without a tool call (cluster overview, guest config).

The App owns what resources exist and what they contain; this module only translates its
descriptions into ``Resource`` / ``ResourceTemplate`` entries and its content into a
``ReadResourceResult``. An unknown URI is a protocol error (-32602), as for an unknown tool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from pvemcp.door._core import App

JSON_MIME = "application/json"


def _field(entry: object, *names: str) -> Any:
    """Read a field from a dataclass-like object or a mapping, trying snake_case and camelCase."""
    for name in names:
        if isinstance(entry, Mapping):
            if name in entry:
                return entry[name]
        elif hasattr(entry, name):
            return getattr(entry, name)
    return None


class ResourceDoor:
    """Resources of one App, split into fixed URIs and URI templates."""

    def __init__(self, app: App) -> None:
        self._app = app

    def _entries(self) -> list[object]:
        return list(self._app.resources())

    @staticmethod
    def _is_template(entry: object) -> bool:
        flag = _field(entry, "template")
        return bool(flag) if flag is not None else "{" in str(_field(entry, "uri") or "")

    def static(self) -> list[types.Resource]:
        out: list[types.Resource] = []
        for entry in self._entries():
            uri = _field(entry, "uri")
            if uri is None or self._is_template(entry):
                continue
            out.append(types.Resource(uri=str(uri), **_described(entry, uri)))
        return out

    def templates(self) -> list[types.ResourceTemplate]:
        out: list[types.ResourceTemplate] = []
        for entry in self._entries():
            template = _field(entry, "uri_template", "uriTemplate")
            if template is None and self._is_template(entry):
                template = _field(entry, "uri")
            if template is None:
                continue
            out.append(types.ResourceTemplate(uri_template=str(template), **_described(entry, template)))
        return out

    async def read(self, uri: str) -> types.ReadResourceResult:
        try:
            content: object = await self._app.read_resource(uri)
        except (ValueError, LookupError) as exc:
            # Unknown URI or a read the core refused (scope, missing guest): the core's words, as a protocol error.
            raise MCPError(
                code=types.INVALID_PARAMS, message=str(exc) or f"Unknown resource: {uri}", data={"uri": uri}
            ) from None
        if content is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {uri}", data={"uri": uri})
        if isinstance(content, str):
            text, mime = content, JSON_MIME if _is_json(content) else "text/plain"
        else:
            text, mime = json.dumps(content, separators=(",", ":"), ensure_ascii=False), JSON_MIME
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=text, mime_type=mime)])


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _described(entry: object, address: object) -> dict[str, Any]:
    """The fields a resource and a resource template share: name (the address if unnamed), title,
    description and MIME type (JSON unless the core says otherwise)."""
    return {
        "name": str(_field(entry, "name") or address),
        "title": _field(entry, "title"),
        "description": _field(entry, "description"),
        "mime_type": _field(entry, "mime_type", "mimeType") or JSON_MIME,
    }
