"""The opt-in toolsets of issue 13 (ops, metrics, exec): the client cap, and the default untouched.

Their golden listings (one file per toolset) are tests/core/test_listings.py's.
"""

from __future__ import annotations

import pytest

from budgets import CLIENT_TOOL_CAP
from pvemcp.core.catalog import Catalog
from pvemcp.dialect.model import load_spec

OPT_IN = ("ops", "metrics", "exec")


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


def test_risky_operations_are_declared_destructive(catalog: Catalog) -> None:
    for name in ("guest_exec", "guest_migrate", "backup_restore", "disk_grow", "guest_template"):
        assert catalog.tools[name].annotations["destructiveHint"] is True, name
    assert catalog.tools["guest_exec"].consequence
