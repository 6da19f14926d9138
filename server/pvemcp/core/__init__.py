"""The core of pvemcp: plain async Python with no knowledge of MCP.

Importing this package must never import ``mcp``; a test enforces it.
"""
