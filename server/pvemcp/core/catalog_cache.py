"""An on-disk cache of the derived catalog, so a server start parses neither tools.yaml nor openapi.json.

Deriving 32 tool schemas from a 2.6 MB spec costs more than the rest of pvemcp's start-up together,
yet its inputs rarely change. The cache is keyed by what the result depends on — pvemcp's version,
the size and modification time of tools.yaml, openapi.json and the deriving code, and the cluster
names — so any change to them misses and rebuilds. It lives in ``$PVEMCP_CACHE_DIR`` or
``$XDG_CACHE_HOME/pvemcp`` (``~/.cache/pvemcp``); ``PVEMCP_CACHE_DIR=off`` disables it. A cache that
cannot be read or written is ignored: it is an optimisation, never a source of truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pvemcp import __version__
from pvemcp.core.catalog import Catalog, ToolDef
from pvemcp.core.kinds import Fact
from pvemcp.core.policy._canonical import canonical_bytes
from pvemcp.core.policy.risk_class import Risk

log = logging.getLogger("pvemcp")
_FORMAT = 3
_HERE = Path(__file__).parent
# The code the catalog is derived from; the handler kinds' records (their parameters, what they report)
# live in the modules of core/tools/, so an edit of any of them misses too.
_CODE = [_HERE / "catalog.py", Path(__file__), _HERE / "policy" / "risk.py", _HERE / "policy" / "risk_class.py"]
_CODE += [_HERE / "kinds.py", *sorted((_HERE / "tools").glob("*.py"))]


def cache_dir(env: dict[str, str] | os._Environ[str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    configured = env.get("PVEMCP_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pvemcp"


def _key(files: Sequence[Path], clusters: Sequence[str]) -> str:
    parts: list[Any] = [_FORMAT, __version__, list(clusters)]
    for path in [*files, *_CODE]:
        stat = path.stat()
        parts.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(canonical_bytes(parts)).hexdigest()[:32]


def _dump(catalog: Catalog) -> str:
    tools = {}
    for name, tool in catalog.tools.items():
        data = asdict(tool)
        data["risk"] = tool.risk.value  # by value: the file holds JSON words, not Python enums
        data["operations"] = dict(tool.operations)
        data["api_params"] = sorted(tool.api_params)
        tools[name] = data
    document = {"tools": tools, "toolsets": catalog.toolsets, "default": catalog.default_toolsets}
    return json.dumps(document, separators=(",", ":"))


def _load(text: str) -> Catalog:
    document = json.loads(text)
    tools = {}
    for name, data in document["tools"].items():
        data["params"] = tuple(data["params"])
        data["risk"] = Risk(data["risk"])  # an unknown word is a ValueError: the cache is rebuilt
        data["api_params"] = frozenset(data["api_params"])
        data["reports"] = tuple(Fact(f) for f in data["reports"])
        tools[name] = ToolDef(**data)
    return Catalog(tools, document["toolsets"], document["default"])


def load_catalog(
    build: Callable[[], Catalog], files: Sequence[Path], clusters: Sequence[str], directory: Path | None
) -> Catalog:
    """The catalog from the cache when its inputs are unchanged, else ``build()`` (and cache it)."""
    if directory is None:
        return build()
    try:
        target = directory / f"catalog-{_key(files, clusters)}.json"
        if target.is_file():
            return _load(target.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.debug("catalog cache unreadable (%s); rebuilding", exc)
        target = None
    catalog = build()
    if target is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8") as tmp:
                tmp.write(_dump(catalog))
            os.replace(tmp.name, target)  # atomic: a concurrent start never reads half a file
        except OSError as exc:
            log.debug("catalog cache not written (%s)", exc)
    return catalog
