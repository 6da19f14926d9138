"""Handler-kind records: beside their functions, found through the index, loaded only when needed.

The index of ``core/kinds.py`` and the records in ``core/tools/`` are held to each other here, so neither can
drift; a start that lists tools from a warm catalog cache is checked, in a fresh interpreter, to import no
handler module (issue #15's start-up time); and what a change's result reports is shown to come from the
tool's definition, so a new tool of an existing kind needs no edit of ``core/tools/conclude.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import pvemcp.core.tools
from pvemcp.core import catalog_cache, kinds
from pvemcp.core.app import App
from pvemcp.core.catalog import Catalog, CatalogError
from pvemcp.core.config import load_app_config
from pvemcp.core.kinds import Fact, HandlerKind, Mode
from pvemcp.core.tools.base import CallContext, ToolResult
from pvemcp.dialect.model import load_spec
from pvemcp.dialect.resources import data_file
from pvemcp.sim.runner import RunningSimulator
from pvemcp.sim.state import config_digest
from simenv import cluster_env

HANDLER_MODULES = sorted({module for module, _ in kinds.discover().values()})


def _records_in_tools() -> dict[str, list[tuple[str, str, HandlerKind]]]:
    """Every HandlerKind bound at module level anywhere in core/tools/: kind -> [(module, attribute, record)]."""
    found: dict[str, list[tuple[str, str, HandlerKind]]] = {}
    for info in pkgutil.iter_modules(pvemcp.core.tools.__path__, "pvemcp.core.tools."):
        module = importlib.import_module(info.name)
        for attribute, value in vars(module).items():
            if isinstance(value, HandlerKind):
                found.setdefault(value.name, []).append((info.name, attribute, value))
    return found


def test_every_discovered_kind_has_its_record_beside_its_function() -> None:
    found = kinds.discover()
    assert len(found) >= 30 and {"guest_action", "guest_list", "api_call", "api_get"} <= set(found)
    for name, (module, record) in found.items():
        assert record.name == name and kinds.load(name) is record
        # the function is defined in the module that holds the record: the record sits beside it
        assert record.function.__module__ == module, name
        assert getattr(importlib.import_module(module), name.upper()) is record, name


def test_every_record_in_core_tools_is_found_once_under_its_own_name() -> None:
    found = _records_in_tools()
    assert set(found) == set(kinds.discover()), "a record the discovery misses, or one it invents"
    for name, places in found.items():
        defined = [(m, a) for m, a, record in places if record.function.__module__ == m]
        assert defined == [(kinds.module_of(name), name.upper())], (name, places)
        assert all(record is kinds.load(name) for _, _, record in places), name  # elsewhere only as an import


def test_an_unknown_kind_is_refused_naming_the_ones_pvemcp_has() -> None:
    with pytest.raises(KeyError, match=r"guest_actoin.*guest_action"):
        kinds.load("guest_actoin")


def _tools_yaml(tmp_path: Path, change: Any) -> Path:
    raw = yaml.safe_load(data_file("tools.yaml").read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_a_tools_yaml_typo_in_handler_or_reports_is_a_catalog_error(tmp_path: Path) -> None:
    spec = load_spec()
    typo = _tools_yaml(tmp_path, lambda raw: raw["tools"]["guest_start"].update(handler="guest_actoin"))
    with pytest.raises(CatalogError, match=r"guest_start: .*guest_actoin.*which pvemcp does not have"):
        Catalog.load(spec, typo)
    unknown = _tools_yaml(tmp_path, lambda raw: raw["tools"]["guest_start"].update(reports=["uptime"]))
    with pytest.raises(CatalogError, match=r"guest_start: reports: .*uptime.*known: state, digest"):
        Catalog.load(spec, unknown)
    bare = _tools_yaml(tmp_path, lambda raw: raw["tools"]["guest_start"].update(reports="digest"))
    with pytest.raises(CatalogError, match="guest_start: reports must be a list"):
        Catalog.load(spec, bare)


def test_a_tool_reports_its_kinds_facts_unless_tools_yaml_says_otherwise() -> None:
    raw = yaml.safe_load(data_file("tools.yaml").read_text(encoding="utf-8"))
    catalog = Catalog.load(load_spec())
    for name, tool in catalog.tools.items():
        kind = kinds.load(tool.handler)
        wanted = (
            tuple(Fact(f) for f in raw["tools"][name]["reports"]) if "reports" in raw["tools"][name] else kind.reports
        )
        assert tool.reports == wanted, name
        assert tool.per_call_risk == (kind.mode in (Mode.GENERIC, Mode.GENERIC_READ)), name
        assert tool.kind_module == kinds.module_of(tool.handler), name  # where the App finds the record


def test_the_catalog_cache_key_covers_every_module_holding_a_record() -> None:
    """The records' parameters and facts go into the derived catalog: editing one of their modules must miss
    the cache (``load_catalog`` keys on the size and time of each file of ``_CODE``)."""
    holding = {
        Path(importlib.import_module(m).__file__ or "").resolve() for m in [*HANDLER_MODULES, "pvemcp.core.kinds"]
    }
    assert holding <= {path.resolve() for path in catalog_cache._CODE}


_LIST_TOOLS = """
import json, sys
from pvemcp.core.app import App
from pvemcp.core.config import load_app_config

app = App(load_app_config(env={"PROXMOX_URL": "https://127.0.0.1:9", "PROXMOX_TOKEN_ID": "root@pam!mcp",
                               "PROXMOX_TOKEN_SECRET": "s", "PROXMOX_FINGERPRINT": "00" * 32}))
names = [tool.name for tool in app.tools()]
print(json.dumps({"tools": names, "modules": sorted(m for m in sys.modules if m.startswith("pvemcp."))}))
"""


def _list_tools_in_a_fresh_interpreter(cache: Path) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXMOX_", "PVEMCP_"))}
    env["PVEMCP_CACHE_DIR"] = str(cache)
    done = subprocess.run(
        [sys.executable, "-c", _LIST_TOOLS], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_listing_tools_from_a_warm_cache_imports_no_handler_module(tmp_path: Path) -> None:
    cold = _list_tools_in_a_fresh_interpreter(tmp_path / "cache")  # a miss: the build reads the records
    assert set(HANDLER_MODULES) <= set(cold["modules"])
    warm = _list_tools_in_a_fresh_interpreter(tmp_path / "cache")
    assert warm["tools"] == cold["tools"] and "guest_stop" in warm["tools"]
    assert [m for m in HANDLER_MODULES if m in warm["modules"]] == []
    assert "pvemcp.core.kinds" in warm["modules"]  # the index is there; the modules it names are not


@pytest.mark.anyio
async def test_a_new_tool_of_an_existing_kind_reports_what_tools_yaml_says(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """A guest_action tool that reports the config digest instead of the state, with no code of its own."""

    def add_tool(raw: dict[str, Any]) -> None:
        raw["tools"]["guest_start_digest"] = {**raw["tools"]["guest_start"], "reports": ["digest"]}
        raw["toolsets"]["guests"].append("guest_start_digest")

    config = replace(load_app_config(env=cluster_env(sim)), tools_file=_tools_yaml(tmp_path, add_tool))
    stopped = sorted(v for v, g in sim.state.guests.items() if g.status == "stopped" and not g.template)
    async with App(config) as app:
        default = await app.call("guest_start", {"vmid": stopped[0]}, CallContext(caller="test"))
        custom = await app.call("guest_start_digest", {"vmid": stopped[1]}, CallContext(caller="test"))
    assert isinstance(default, ToolResult) and isinstance(custom, ToolResult), (default, custom)
    (started,) = default.structured["results"]
    assert started["guest_status"] == "running" and "digest" not in started
    (item,) = custom.structured["results"]
    assert item["ok"] and "guest_status" not in item
    assert item["digest"] == config_digest(sim.state.guests[stopped[1]])
