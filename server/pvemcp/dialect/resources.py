"""Locate the data files pvemcp ships: ``openapi.json`` and ``tools.yaml``.

In a wheel they live in ``pvemcp/data/``; in a source checkout (editable install, tests)
they live at the repository root. ``PVEMCP_SPEC`` / ``PVEMCP_TOOLS`` override both.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_ENV_OVERRIDES = {"openapi.json": "PVEMCP_SPEC", "tools.yaml": "PVEMCP_TOOLS"}


def data_file(name: str) -> Path:
    """Return the path of a shipped data file, or raise FileNotFoundError naming where we looked."""
    env = _ENV_OVERRIDES.get(name)
    if env and os.environ.get(env):
        return Path(os.environ[env])
    candidates = [_PACKAGE_DIR / "data" / name, _PACKAGE_DIR.parent.parent / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{name} not found (looked in {looked})")
