"""Fixtures for the PVE-dialect tests: the official schema and recorded guest configs from ../shared.

Both are read where they lie (never copied into the repo) and loaded once per session; a test that
asks for them is skipped cleanly when ../shared is not beside the repository.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
APIDOC = SHARED / "pve-api" / "apidoc.json"
FIXTURES = SHARED / "pve-fixtures"

JsonDict = dict[str, Any]


def _require_shared() -> None:
    if not APIDOC.is_file():
        pytest.skip("../shared (official PVE schema and fixtures) is not present beside the repo")


@pytest.fixture(scope="session")
def apidoc() -> list[JsonDict]:
    """The official PVE 9.1 API schema tree (apidoc.json)."""
    _require_shared()
    data: list[JsonDict] = json.loads(APIDOC.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def api_schemas(apidoc: list[JsonDict]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Every schema node of every parameter and return value, nested property-string keys included,
    as (operation, dotted name, node)."""
    return list(_iter_schemas(apidoc))


def _iter_schemas(apidoc: list[JsonDict]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:

    def walk(node: Mapping[str, Any], where: str, name: str) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        yield where, name, node
        fmt = node.get("format")
        if isinstance(fmt, Mapping):
            for key, sub in fmt.items():
                if isinstance(sub, Mapping):
                    yield from walk(sub, where, f"{name}.{key}")
        for key, sub in (node.get("properties") or {}).items():
            yield from walk(sub, where, key)
        if isinstance(node.get("items"), Mapping):
            yield from walk(node["items"], where, f"{name}[]")

    stack = list(apidoc)
    while stack:
        tree = stack.pop()
        for method, info in (tree.get("info") or {}).items():
            where = f"{method} {tree['path']}"
            if info.get("parameters"):
                yield from walk(info["parameters"], where, "")
            if info.get("returns"):
                yield from walk(info["returns"], f"{where} (returns)", "")
        stack.extend(tree.get("children") or [])


@pytest.fixture(scope="session")
def api_param(apidoc: list[JsonDict]) -> Callable[[str, str, str], JsonDict]:
    """``api_param("PUT", "/nodes/{node}/qemu/{vmid}/config", "net[n]")`` -> the parameter definition."""
    by_path: dict[str, JsonDict] = {}
    stack = list(apidoc)
    while stack:
        tree = stack.pop()
        by_path[tree["path"]] = tree
        stack.extend(tree.get("children") or [])

    def lookup(method: str, path: str, name: str) -> JsonDict:
        param: JsonDict = by_path[path]["info"][method]["parameters"]["properties"][name]
        return param

    return lookup


@pytest.fixture(scope="session")
def config_params(apidoc: list[JsonDict]) -> Callable[[str], dict[str, JsonDict]]:
    """The documented keys of a guest config as GET returns it: ``config_params("qemu")``."""
    by_path: dict[str, JsonDict] = {}
    stack = list(apidoc)
    while stack:
        tree = stack.pop()
        by_path[tree["path"]] = tree
        stack.extend(tree.get("children") or [])

    def lookup(kind: str) -> dict[str, JsonDict]:
        returns = by_path[f"/nodes/{{node}}/{kind}/{{vmid}}/config"]["info"]["GET"]["returns"]
        props: dict[str, JsonDict] = returns["properties"]
        return props

    return lookup


@pytest.fixture(scope="session")
def config_param(config_params: Callable[[str], dict[str, JsonDict]]) -> Callable[[str, str], JsonDict | None]:
    """``config_param("qemu", "net0")`` -> the definition of a config key (indexed keys resolved)."""

    def lookup(kind: str, key: str) -> JsonDict | None:
        params = config_params(kind)
        if key in params:
            return params[key]
        match = re.fullmatch(r"([a-z]+)(\d+)", key)
        return params.get(f"{match[1]}[n]") if match else None

    return lookup


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], Any]:
    """``recorded("lnvps-api__GET_qemu_vmid_config__pve9.json")`` -> the ``data`` of a real response."""
    _require_shared()

    def load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["data"]

    return load


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """``require_tool("node")`` -> path of an interpreter used for cross-checks; skips without it."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.skip(f"{name} is not installed")
        return path

    return find
