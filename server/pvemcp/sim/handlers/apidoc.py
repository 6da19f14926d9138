"""The API viewer's ``/pve-docs/api-viewer/apidoc.js``, as every PVE node serves it, for ``pvemcp spec pull``.

On a node the file is static, outside ``/api2``, and served without authentication (proxmox/pve-manager
``PVE/Service/pveproxy.pm``: ``add_dirs($dirs, '/pve-docs/' => ...)``). Its first statement is the schema,
written by proxmox/pve-docs ``extractapi.pl`` as ``const apiSchema = <JSON>;``; the viewer's ExtJS code
follows. The simulator writes the same shape from an official ``apidoc.json`` named by
``PVEMCP_SIM_APIDOC`` (the tests use the one in ../shared); without one it answers 404 like a node
without pve-docs, because the bundled openapi.json cannot be turned back into PVE's tree faithfully.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

APIDOC_PATH = "/pve-docs/api-viewer/apidoc.js"
SOURCE_ENV = "PVEMCP_SIM_APIDOC"
# Stands in for the viewer code after the schema (PVEAPI.js): a client must not assume the file ends there.
_VIEWER_TAIL = "\nExt.onReady(function() {\n    // the API viewer (not simulated)\n});\n"


def apidoc_source() -> Path | None:
    """The apidoc.json to serve, or None (the simulated node has no API viewer)."""
    value = os.environ.get(SOURCE_ENV)
    return Path(value) if value else None


@functools.lru_cache(maxsize=2)
def _render(path: str, mtime_ns: int) -> bytes:
    tree = json.loads(Path(path).read_text(encoding="utf-8"))
    text = "const apiSchema = " + json.dumps(tree, indent=3, sort_keys=True) + ";\n\n" + _VIEWER_TAIL
    return text.encode()


def apidoc_js() -> bytes | None:
    """The file's bytes, or None when there is nothing to serve."""
    source = apidoc_source()
    if source is None or not source.is_file():
        return None
    return _render(str(source), source.stat().st_mtime_ns)
