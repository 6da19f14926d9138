"""The floor: the smallest useful low-level ``mcp`` server, one trivial tool, over stdio.

Why it exists: importing mcp 2.x alone costs most of a second on a small machine, so absolute
start-up and round-trip figures are mostly the SDK's and the interpreter's. Measuring this server
in the same run as pvemcp and the peers turns them into ratios that mean something: whatever pvemcp
adds on top of "an MCP server at all" is the ratio above 1.0.

It uses exactly what pvemcp's stdio door uses (``mcp.server.Server``, ``stdio_server``), declares an
input schema and answers ``ping`` with a one-line text and a structured result, so the round trip
covers the same validation and serialisation steps a real tool call goes through.

Run: ``python bench/floor_server.py`` (speaks MCP on stdin/stdout until stdin closes).
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

TOOL = types.Tool(
    name="ping",
    description="Answer pong with the given text.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "additionalProperties": False},
    annotations=types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True),
)


async def on_list_tools(ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None) -> Any:
    """The one tool."""
    return types.ListToolsResult(tools=[TOOL])


async def on_call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
    """``ping``: echo the text back (anything else is the protocol error the spec asks for)."""
    if params.name != TOOL.name:
        raise ValueError(f"unknown tool {params.name}")
    text = str((params.arguments or {}).get("text", ""))
    return types.CallToolResult(content=[types.TextContent(text=f"pong {text}")], structured_content={"pong": text})


def build_floor() -> Server[Any]:
    """The floor server (a factory, so the reliability tests could drive it in-memory too)."""
    return Server("floor", version="1", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


async def _serve() -> None:
    server = build_floor()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(_serve)
