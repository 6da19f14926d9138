"""The opt-in toolsets of issue 13 (ops, metrics, exec): golden listing, budget, and the default untouched.

The golden file is regenerated on purpose with UPDATE_SNAPSHOTS=1, like tests/snapshots/tools.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pvemcp.core.catalog import Catalog
from pvemcp.dialect.model import load_spec

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "tools-ops.json"
OPT_IN = ("ops", "metrics", "exec")
CLIENT_TOOL_CAP = 40  # Cursor lists only the first 40 tools


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(load_spec())


def test_opt_in_toolsets_are_not_default(catalog: Catalog) -> None:
    assert not set(OPT_IN) & set(catalog.default_toolsets)
    assert len(catalog.select()) <= CLIENT_TOOL_CAP
    default = {t.name for t in catalog.select()}
    assert not default & {t.name for t in catalog.select(list(OPT_IN))}


def test_each_opt_in_toolset_with_the_defaults_fits_the_client_cap(catalog: Catalog) -> None:
    for toolset in OPT_IN:
        chosen = [*catalog.default_toolsets, toolset]
        assert len(catalog.select(chosen)) <= CLIENT_TOOL_CAP, toolset


def test_golden_listing_of_the_opt_in_toolsets(catalog: Catalog) -> None:
    listing = [
        {
            "name": t.name,
            "toolset": t.toolset,
            "title": t.title,
            "description": t.description,
            "inputSchema": t.input_schema,
            "outputSchema": t.output_schema,
            "annotations": t.annotations,
        }
        for t in catalog.select(list(OPT_IN))
    ]
    current = json.dumps(listing, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8") == current, (
        "the opt-in tool listing changed: review the diff and regenerate with UPDATE_SNAPSHOTS=1"
    )


def test_risky_operations_are_declared_destructive(catalog: Catalog) -> None:
    for name in ("guest_exec", "guest_migrate", "backup_restore", "disk_grow", "guest_template"):
        assert catalog.tools[name].annotations["destructiveHint"] is True, name
    assert catalog.tools["guest_exec"].consequence
