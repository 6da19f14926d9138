"""The on-disk catalog cache: a hit returns the same catalog, any input change misses, damage is ignored."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pvemcp.core.catalog import Catalog
from pvemcp.core.catalog_cache import cache_dir, load_catalog
from pvemcp.core.policy.risk_class import Risk
from pvemcp.dialect.model import load_spec
from pvemcp.dialect.resources import data_file


def _inputs(tmp_path: Path) -> list[Path]:
    tools = tmp_path / "tools.yaml"
    tools.write_text(data_file("tools.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return [tools, data_file("openapi.json")]


def _counting_build(files: list[Path], calls: list[int]) -> Catalog:
    calls.append(1)
    return Catalog.load(load_spec(), files[0])


def test_hit_returns_an_equal_catalog_without_building(tmp_path: Path) -> None:
    files, calls = _inputs(tmp_path), list[int]()
    first = load_catalog(lambda: _counting_build(files, calls), files, ["default"], tmp_path / "cache")
    second = load_catalog(lambda: _counting_build(files, calls), files, ["default"], tmp_path / "cache")
    assert len(calls) == 1
    assert second.tools == first.tools
    assert second.toolsets == first.toolsets and second.default_toolsets == first.default_toolsets


def test_risk_is_stored_as_its_word_and_loaded_as_the_enum(tmp_path: Path) -> None:
    files, calls = _inputs(tmp_path), list[int]()
    directory = tmp_path / "cache"
    load_catalog(lambda: _counting_build(files, calls), files, ["default"], directory)
    (cached,) = directory.iterdir()
    stored = json.loads(cached.read_text(encoding="utf-8"))["tools"]
    assert stored["guest_list"]["risk"] == "read" and stored["guest_delete"]["risk"] == "destructive"
    hit = load_catalog(lambda: _counting_build(files, calls), files, ["default"], directory)
    assert len(calls) == 1
    # a str would compare equal to the enum; `is` and the type prove the cache gives back the enum
    assert all(type(tool.risk) is Risk for tool in hit.tools.values())
    assert hit.tools["guest_delete"].risk is Risk.DESTRUCTIVE
    stored["guest_list"]["risk"] = "harmless"  # a word the enum does not know: rebuild, never guess
    cached.write_text(json.dumps({**json.loads(cached.read_text(encoding="utf-8")), "tools": stored}))
    rebuilt = load_catalog(lambda: _counting_build(files, calls), files, ["default"], directory)
    assert len(calls) == 2 and rebuilt.tools["guest_list"].risk is Risk.READ


def test_changed_inputs_or_clusters_miss(tmp_path: Path) -> None:
    files, calls = _inputs(tmp_path), list[int]()
    load_catalog(lambda: _counting_build(files, calls), files, ["default"], tmp_path / "cache")
    load_catalog(lambda: _counting_build(files, calls), files, ["a", "b"], tmp_path / "cache")
    assert len(calls) == 2
    stat = files[0].stat()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    load_catalog(lambda: _counting_build(files, calls), files, ["default"], tmp_path / "cache")
    assert len(calls) == 3


def test_a_damaged_cache_is_rebuilt_and_an_unwritable_one_ignored(tmp_path: Path) -> None:
    files, calls = _inputs(tmp_path), list[int]()
    directory = tmp_path / "cache"
    load_catalog(lambda: _counting_build(files, calls), files, ["default"], directory)
    for entry in directory.iterdir():
        entry.write_text("{not json", encoding="utf-8")
    rebuilt = load_catalog(lambda: _counting_build(files, calls), files, ["default"], directory)
    assert len(calls) == 2 and "guest_list" in rebuilt.tools
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    load_catalog(lambda: _counting_build(files, calls), files, ["default"], blocker / "sub")
    assert len(calls) == 3


def test_cache_location_and_switch() -> None:
    assert cache_dir({"PVEMCP_CACHE_DIR": "off"}) is None
    assert cache_dir({"PVEMCP_CACHE_DIR": "/x"}) == Path("/x")
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/pvemcp")
