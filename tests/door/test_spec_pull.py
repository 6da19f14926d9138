"""``pvemcp spec pull`` end to end: the simulator serves the api-viewer's apidoc.js, the CLI pulls it.

The simulator serves the file only from an official apidoc.json (``PVEMCP_SIM_APIDOC``); the end-to-end
tests use ../shared's and skip cleanly without it. Each test gets its own cache directory, so a pulled
schema can never leak into another test's server.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from pvemcp.core.spec_pull import PullError, parse_apidoc_js
from pvemcp.sim.handlers.apidoc import SOURCE_ENV
from pvemcp.sim.runner import RunningSimulator

from .helpers import mutating, python, subprocess_env

START = "POST /nodes/{node}/qemu/{vmid}/status/start"


def test_parse_apidoc_js_reads_the_literal_and_ignores_the_viewer_code() -> None:
    tree = [{"path": "/version", "text": "version", "info": {"GET": {"method": "GET"}}}]
    text = "const apiSchema = " + json.dumps(tree, indent=3) + ";\n\nExt.onReady(function() { var x = [1]; });\n"
    assert parse_apidoc_js(text) == tree
    with pytest.raises(PullError, match="apiSchema"):
        parse_apidoc_js("Ext.onReady(function() {});")
    with pytest.raises(PullError, match="not valid JSON"):
        parse_apidoc_js("const apiSchema = [{'path': 1}];")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


async def _pvemcp(sim: RunningSimulator, cache: Path, *args: str) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [python(), "-m", "pvemcp", *args],
        env=subprocess_env(sim, PVEMCP_CACHE_DIR=str(cache)),
        check=False,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.anyio
async def test_a_node_without_api_viewer_is_one_clear_line(
    sim: RunningSimulator, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    code, _, err = await _pvemcp(sim, cache, "spec", "pull")
    assert code == 1
    assert "404" in err and "pve-docs" in err and err.count("\n") == 1
    assert not list(cache.glob("spec/cluster-*.json"))


def _walk(tree: list[Any]) -> Iterator[Mapping[str, Any]]:
    for node in tree:
        yield node
        yield from _walk(node.get("children") or [])


def _apidoc_variant(shared: Path, target: Path, *, add_param: bool = False, drop_start: bool = False) -> Path:
    tree = copy.deepcopy(json.loads((shared / "pve-api" / "apidoc.json").read_text()))
    for node in _walk(tree):
        if node.get("path") == "/nodes/{node}/qemu/{vmid}/status/start":
            if add_param:
                props = node["info"]["POST"]["parameters"]["properties"]
                props["pvemcp-test-flag"] = {"type": "boolean", "optional": 1, "description": "New in this release."}
            if drop_start:
                del node["info"]["POST"]
    target.write_text(json.dumps(tree))
    return target


@pytest.mark.shared
@pytest.mark.anyio
async def test_pull_builds_the_catalog_and_everything_uses_it(
    sim: RunningSimulator, cache: Path, shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOURCE_ENV, str(_apidoc_variant(shared_dir, tmp_path / "apidoc.json", add_param=True)))
    code, out, err = await _pvemcp(sim, cache, "spec", "pull")
    assert code == 0, err
    assert "PVE 9.1.1: pulled" in out
    assert "0 only in pvemcp's bundled one, 1 with different parameters" in out
    assert f"{START} (guest_start): +pvemcp-test-flag" in out
    pulled = json.loads(next(cache.glob("spec/openapi-pve-*.json")).read_text())
    assert pulled["info"]["version"] == "9.1.1"

    code, out, err = await _pvemcp(sim, cache, "check")
    assert code == 0, out + err
    assert "ok   schema      pvemcp's API schema is for PVE 9.1.1 (pulled from the cluster)" in out

    # calls are validated against the pulled schema: the cluster's new parameter is accepted
    call = {"method": "POST", "path": "/nodes/pve1/qemu/100/status/start", "args": {"pvemcp-test-flag": 1}}
    code, out, err = await _pvemcp(sim, cache, "call", "api_call", json.dumps({**call, "dry_run": True}))
    assert code == 0 and "pvemcp-test-flag" in out, out + err

    # without the pulled schema, the bundled one is used again and refuses it
    code, out, err = await _pvemcp(sim, tmp_path / "other-cache", "call", "api_call", json.dumps(call))
    assert code == 1 and "pvemcp-test-flag: is not a parameter" in err
    code, out, err = await _pvemcp(sim, tmp_path / "other-cache", "check")
    assert "(pulled from the cluster)" not in out
    assert mutating(sim) == []


@pytest.mark.shared
@pytest.mark.anyio
async def test_pull_refuses_a_schema_the_tools_cannot_be_built_on(
    sim: RunningSimulator, cache: Path, shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOURCE_ENV, str(_apidoc_variant(shared_dir, tmp_path / "apidoc.json", drop_start=True)))
    code, _, err = await _pvemcp(sim, cache, "spec", "pull")
    assert code == 1
    assert "guest_start" in err and "Nothing was changed" in err
    assert not list(cache.glob("spec/cluster-*.json"))


@pytest.mark.shared
@pytest.mark.anyio
async def test_check_says_what_differs_on_another_release(
    sim: RunningSimulator, cache: Path, shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster on PVE 9.2 whose start operation takes a new parameter: check names the tool it touches."""
    from pvemcp.sim.handlers import cluster

    monkeypatch.setattr(cluster, "PVE_VERSION", "9.2.0")
    monkeypatch.setattr(cluster, "PVE_RELEASE", "9.2")
    monkeypatch.setenv(SOURCE_ENV, str(_apidoc_variant(shared_dir, tmp_path / "apidoc.json", add_param=True)))
    code, out, err = await _pvemcp(sim, cache, "check")
    assert code == 0, out + err
    schema = next(line for line in out.splitlines() if "schema" in line)
    assert "the cluster runs PVE 9.2.0, pvemcp's API schema is for 9.1" in schema
    assert "0 operation(s) pvemcp's lacks, lacks 0, and 1 take other parameters" in schema
    assert "tools affected: guest_start" in schema

    code, out, _ = await _pvemcp(sim, cache, "spec", "pull")
    assert code == 0 and "PVE 9.2.0: pulled" in out
    code, out, _ = await _pvemcp(sim, cache, "check")
    assert "pvemcp's API schema is for PVE 9.2.0 (pulled from the cluster), as the cluster" in out


@pytest.mark.anyio
async def test_check_on_another_release_without_api_viewer_still_passes(
    sim: RunningSimulator, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pvemcp.sim.handlers import cluster

    monkeypatch.setattr(cluster, "PVE_VERSION", "8.4.1")
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    code, out, err = await _pvemcp(sim, cache, "check")
    assert code == 0, out + err  # a release difference is a warning: most operations are unchanged
    schema = next(line for line in out.splitlines() if "schema" in line)
    assert "runs PVE 8.4.1" in schema and "spec pull" in schema and "404" in schema
