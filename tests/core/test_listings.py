"""Golden tool listings: one file per toolset combination a host can be given, compared on every run.

A listing changes only on purpose: review the diff, then regenerate with ``UPDATE_SNAPSHOTS=1``. A
missing file fails too (CI starts from a clean clone, so nothing is written behind its back).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pvemcp.core.catalog import Catalog
from pvemcp.dialect.model import load_spec

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"

# file -> (toolsets, read-only): None is the default toolsets; an opt-in toolset's file lists the tools
# it adds to them (the defaults' own entries are tools.json's).
LISTINGS: dict[str, tuple[list[str] | None, bool]] = {
    "tools.json": (None, False),
    "tools-read-only.json": (None, True),
    "tools-ops.json": (["ops"], False),
    "tools-metrics.json": (["metrics"], False),
    "tools-exec.json": (["exec"], False),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(load_spec())


def listing(catalog: Catalog, toolsets: list[str] | None, read_only: bool) -> str:
    """The tools as tools/list describes them, in listing order, as stable JSON text."""
    tools = [
        {
            "name": t.name,
            "title": t.title,
            "description": t.description,
            "inputSchema": t.input_schema,
            "outputSchema": t.output_schema,
            "annotations": t.annotations,
        }
        for t in catalog.select(toolsets, read_only=read_only)
    ]
    return json.dumps(tools, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_golden_listing(catalog: Catalog, name: str) -> None:
    toolsets, read_only = LISTINGS[name]
    current = listing(catalog, toolsets, read_only)
    snapshot = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(current, encoding="utf-8")
    assert snapshot.exists(), f"{snapshot.name} is missing: generate it with UPDATE_SNAPSHOTS=1 and review it"
    assert snapshot.read_text(encoding="utf-8") == current, (
        f"the {snapshot.name} listing changed: review the diff and regenerate with UPDATE_SNAPSHOTS=1"
    )


def test_every_toolset_has_a_golden_listing(catalog: Catalog) -> None:
    covered = {ts for toolsets, _ in LISTINGS.values() for ts in (toolsets or catalog.default_toolsets)}
    assert covered == set(catalog.toolsets)


def test_the_read_only_listing_is_the_default_one_minus_what_may_change_something(catalog: Catalog) -> None:
    default = json.loads(listing(catalog, None, False))
    read_only = json.loads(listing(catalog, None, True))
    assert read_only == [t for t in default if t["name"] in {r["name"] for r in read_only}]
    dropped = [t for t in default if t not in read_only]
    assert dropped and all(not t["annotations"]["readOnlyHint"] for t in dropped)
