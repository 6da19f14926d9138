"""The package boundaries of docs/ARCHITECTURE.md, held by parsing every import of the source tree.

A boundary that is only written down erodes with the first convenient import; this test reads each module's
``import`` statements with :mod:`ast` (top level and inside functions alike, since a lazy import is still a
dependency) and names the offending file and line, so a violation is fixed where it is made.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "server" / "pvemcp"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module name ``path`` imports, with its line (relative imports resolved)."""
    module_parts = ["pvemcp", *path.relative_to(PACKAGE).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts.pop()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # ``from pvemcp import core`` imports pvemcp.core
                yield node.lineno, f"{name}.{alias.name}"


def _sources(subpackage: str) -> list[Path]:
    root = PACKAGE / subpackage
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(subpackage: str, allowed: tuple[str, ...], forbidden: tuple[str, ...] = ()) -> list[str]:
    """Imports of ``subpackage`` that reach into pvemcp outside ``allowed``, or into ``forbidden`` at all."""
    found = []
    for path in _sources(subpackage):
        for line, name in _imports(path):
            outside = _under(name, "pvemcp") and name != "pvemcp" and not any(_under(name, a) for a in allowed)
            if name == "pvemcp.__version__":
                outside = False
            if outside or any(_under(name, f) for f in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return found


def test_the_source_tree_is_where_the_test_looks() -> None:
    """The rules below are vacuous if the paths are wrong; each layer must have modules to check."""
    for sub in ("core", "dialect", "sim", "door"):
        assert len(_sources(sub)) > 3, sub


def test_the_dialect_imports_nothing_else_of_pvemcp() -> None:
    """Both core and sim build on it, so it may depend on neither."""
    assert _violations("dialect", ("pvemcp.dialect",)) == []


def test_core_never_imports_mcp_the_simulator_or_a_door() -> None:
    """The core is the product without a protocol: the MCP door and the CLI wrap it, the simulator stands in
    for Proxmox only in tests and demos."""
    assert _violations("core", ("pvemcp.core", "pvemcp.dialect"), forbidden=("mcp",)) == []


def test_the_simulator_imports_only_itself_and_the_dialect() -> None:
    """The simulator answers as Proxmox does; sharing the core's code would let a core bug hide in both."""
    assert _violations("sim", ("pvemcp.sim", "pvemcp.dialect")) == []


def test_the_door_reaches_the_core_only_through_its_facade() -> None:
    """``door/_core.py`` lists everything the door uses of the core, so the core's interface is one file.
    (``pvemcp demo`` starts the simulator, so the door may import ``pvemcp.sim``.)"""
    door = [
        v
        for v in _violations("door", ("pvemcp.door", "pvemcp.dialect", "pvemcp.sim"))
        if not v.startswith("pvemcp/door/_core.py:")
    ]
    assert door == []


@pytest.mark.parametrize("layer", ["core", "dialect", "sim"])
def test_no_layer_below_the_doors_imports_a_door(layer: str) -> None:
    """Doors (MCP server, CLI commands) sit on top; nothing under them may call back up."""
    assert _violations(layer, ("pvemcp",), forbidden=("pvemcp.door", "pvemcp.cli")) == []


@pytest.mark.parametrize("layer", ["core", "dialect"])
def test_cli_commands_live_in_a_door(layer: str) -> None:
    """A ``cmd_*`` function prints and returns an exit code: that is a door's job, not the core's."""
    commands = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
        for path in _sources(layer)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("cmd_")
    ]
    assert commands == []


def test_every_subcommand_is_implemented_by_a_door_or_the_simulator() -> None:
    """``pvemcp <command>`` dispatches to ``module:function``; the module must be a door (or ``pvemcp sim``)."""
    from pvemcp.cli import _HANDLERS

    outside = {
        cmd: target for cmd, target in _HANDLERS.items() if not target.startswith(("pvemcp.door.", "pvemcp.sim."))
    }
    assert outside == {}
    assert {"audit", "spec", "serve"} <= set(_HANDLERS)
