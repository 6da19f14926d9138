"""pvemcp: a Model Context Protocol server for Proxmox VE.

The package has three visible parts: ``pvemcp.core`` (spec, Proxmox client, policy, tools;
knows nothing of MCP), ``pvemcp.door`` (the MCP door onto the core) and ``pvemcp.sim``
(the embedded Proxmox VE simulator used by the demo and the tests).
"""

__version__ = "0.1.0"
