"""README figures and the bundle manifest's tool list, written from the code: ``python scripts/readme_figures.py``.

Every figure the code can compute sits between markers, ``<!-- figure:NAME -->VALUE<!-- /figure -->``
(invisible when rendered), and generated blocks between ``<!-- generated:NAME -->`` and
``<!-- /generated -->``. The MCP Bundle's ``mcpb/manifest.json`` gets the tool names, descriptions and
the version. ``--check`` changes nothing and exits 1 naming what is stale; the tests run the same check.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MANIFEST = REPO / "mcpb" / "manifest.json"
PLACEHOLDER = {
    "PROXMOX_URL": "https://pve.invalid:8006",
    "PROXMOX_TOKEN_ID": "root@pam!placeholder",
    "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
}
_FIGURE = re.compile(r"<!-- figure:([a-z-]+) -->(.*?)<!-- /figure -->")
_BLOCK = re.compile(r"(<!-- generated:([a-z-]+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def _tools() -> list:  # type: ignore[type-arg]
    from pvemcp.core.app import App, load_app_config

    return App(load_app_config(config_path=None, env=PLACEHOLDER)).tools()


def _size() -> int:
    from pvemcp.door.server import compact_tool_payload, tool_to_wire

    return len(compact_tool_payload([tool_to_wire(t) for t in _tools()]))


def _operations() -> int:
    from pvemcp.dialect.model import load_spec

    return sum(1 for _ in load_spec())


def _recipe() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pvemcp", "token-recipe"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PVEMCP_CACHE_DIR": "off"},
        cwd=REPO,
    )
    return "```bash\n" + done.stdout + "```\n"


FIGURES: dict[str, Callable[[], str]] = {
    "tools": lambda: str(len(_tools())),
    "toolsets": lambda: str(len({t.toolset for t in _tools()})),
    "operations": lambda: f"{_operations():,}",
    "tool-list-chars": lambda: f"{_size():,}",
}
BLOCKS: dict[str, Callable[[], str]] = {"token-recipe": _recipe}


def render(text: str) -> str:
    values = {name: compute() for name, compute in FIGURES.items()}

    def figure(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"README: unknown figure {name!r}")
        return f"<!-- figure:{name} -->{values[name]}<!-- /figure -->"

    def block(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise SystemExit(f"README: unknown generated block {name!r}")
        return match.group(1) + BLOCKS[name]() + match.group(4)

    return _BLOCK.sub(block, _FIGURE.sub(figure, text))


def stale(text: str) -> list[str]:
    """Names of the figures and blocks whose README value differs from the code's."""
    fresh = render(text)
    old = dict(_FIGURE.findall(text)) | {m.group(2): m.group(3) for m in _BLOCK.finditer(text)}
    new = dict(_FIGURE.findall(fresh)) | {m.group(2): m.group(3) for m in _BLOCK.finditer(fresh)}
    return sorted(name for name in new if old.get(name) != new[name])


def render_manifest(text: str) -> str:
    """The manifest with the tools the server lists and pvemcp's version; everything else as written."""
    import json

    from pvemcp import __version__

    manifest = json.loads(text)
    manifest["version"] = __version__
    manifest["tools"] = [{"name": t.name, "description": t.description} for t in _tools()]
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a figure is stale; change nothing")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    manifest = MANIFEST.read_text(encoding="utf-8")
    if args.check:
        names = stale(text) + (["mcpb/manifest.json"] if render_manifest(manifest) != manifest else [])
        if names:
            print(f"stale: {', '.join(names)}; run: python scripts/readme_figures.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(render(text), encoding="utf-8")
    MANIFEST.write_text(render_manifest(manifest), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
