"""The MCP door: wires the core to mcp.server.Server (stdio and streamable HTTP)."""
