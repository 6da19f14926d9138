"""What the ecosystem installs pvemcp from: the MCP Bundle, server.json for the MCP registry, the Dockerfile.

The bundle is checked by the official ``mcpb`` CLI (``scripts/mcpb.sh`` installs the pinned package on first
use, as the Inspector is installed; skipped only without npm, and never in CI) and packed for real. server.json has no
validator on npm or PyPI, so its structure is checked against the registry's published rules (required
fields, name pattern, description length, exact versions) and against the code (variables it reads).
There is no container engine here, so the Dockerfile is checked for what can be checked: a non-root
USER, the exec-form ENTRYPOINT, every COPY source present, and its install command run in a fresh venv,
after which the installed command finds its data files without the repository.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import pvemcp
from pvemcp.core.pve.config import ENV_SUFFIXES
from pvemcp.door._core import App, load_app_config

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = {
    "PROXMOX_URL": "https://pve.invalid:8006",
    "PROXMOX_TOKEN_ID": "root@pam!placeholder",
    "PROXMOX_TOKEN_SECRET": "placeholder-never-sent",
}
# CI has npm: there, a missing npm is a failure of the machine's set-up, not a reason to skip.
needs_npm = pytest.mark.skipif(
    shutil.which("npm") is None and not os.environ.get("CI"), reason="npm is not on PATH (mcpb needs Node.js)"
)


def _project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def env_name_is_read(name: str) -> bool:
    """Does pvemcp read this environment variable? PROXMOX_* through ClientConfig, PVEMCP_* by name."""
    if name.startswith("PROXMOX_"):
        return name.removeprefix("PROXMOX_") in ENV_SUFFIXES
    sources = "\n".join(p.read_text() for p in (REPO / "server" / "pvemcp").rglob("*.py"))
    return f'"{name}"' in sources


# -- the MCP Bundle -------------------------------------------------------------------------------


def _manifest() -> dict:  # type: ignore[type-arg]
    return dict(json.loads((REPO / "mcpb" / "manifest.json").read_text()))


def test_manifest_matches_the_code() -> None:
    manifest = _manifest()
    assert manifest["version"] == _project_version() == pvemcp.__version__
    tools = App(load_app_config(config_path=None, env=PLACEHOLDER)).tools()
    listed = [{"name": t.name, "description": t.description} for t in tools]
    assert manifest["tools"] == listed, "stale tool list: run python scripts/readme_figures.py"
    config = manifest["server"]["mcp_config"]
    assert config["args"][-2:] == ["pvemcp", "serve"]
    for name in config["env"]:
        assert env_name_is_read(name), name
    # What Claude Desktop runs, with the user's answers substituted, is a configuration pvemcp accepts.
    answers = {
        "proxmox_url": "https://pve.example:8006",
        "token_id": "pvemcp@pve!mcp",
        "token_secret": "00000000-1111-2222-3333-444444444444",
        "fingerprint": "",  # left empty: the default
        "read_only": "true",
    }
    env = {k: re.sub(r"\$\{user_config\.(\w+)\}", lambda m: answers[m.group(1)], v) for k, v in config["env"].items()}
    app_config = load_app_config(config_path=None, env=env)
    assert app_config.policy.read_only is True
    assert app_config.clusters["default"].token_id == "pvemcp@pve!mcp"
    assert set(answers) == set(manifest["user_config"])
    assert manifest["user_config"]["token_secret"]["sensitive"] is True


@needs_npm
@pytest.mark.timeout(600)
def test_mcpb_validate_and_pack(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "scripts/mcpb.sh", "validate"], cwd=REPO, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes" in done.stdout

    out = tmp_path / "pvemcp.mcpb"
    packed = subprocess.run(
        ["bash", "scripts/mcpb.sh", "pack", str(out)], cwd=REPO, capture_output=True, text=True, timeout=540
    )
    assert packed.returncode == 0, packed.stdout + packed.stderr
    names = set(zipfile.ZipFile(out).namelist())
    # everything `uv run pvemcp serve` needs in the bundle: the project, its package and its data files
    assert {"manifest.json", "pyproject.toml", "README.md", "openapi.json", "tools.yaml"} <= names
    assert "server/pvemcp/cli.py" in names and not any("__pycache__" in n for n in names)
    entry = _manifest()["server"]["entry_point"]
    assert entry in names


# -- server.json ----------------------------------------------------------------------------------


def test_server_json_follows_the_registry_rules() -> None:
    server = json.loads((REPO / "server.json").read_text())
    assert server["$schema"].startswith("https://static.modelcontextprotocol.io/schemas/")
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", server["name"])
    assert 1 <= len(server["description"]) <= 100
    assert server["version"] == _project_version()
    # PyPI ownership: the registry looks for "mcp-name: <name>" in the package's README
    assert f"mcp-name: {server['name']}" in (REPO / "README.md").read_text()
    (package,) = server["packages"]
    assert package["registryType"] == "pypi" and package["registryBaseUrl"] == "https://pypi.org"
    assert package["identifier"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    assert package["version"] == server["version"] and package["version"] != "latest"
    assert package["transport"] == {"type": "stdio"}
    assert [a.get("value") for a in package["packageArguments"]] == ["serve"]
    for variable in package["environmentVariables"]:
        assert env_name_is_read(variable["name"]), variable["name"]
        assert variable["description"]
        assert variable.get("format", "string") in ("string", "number", "boolean", "filepath")
    secrets = {v["name"] for v in package["environmentVariables"] if v.get("isSecret")}
    assert secrets == {"PROXMOX_TOKEN_SECRET"}


# -- the Dockerfile -------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


def test_dockerfile_is_non_root_and_serves_both_transports() -> None:
    rows = _instructions()
    users = [rest for kw, rest in rows if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, (kw, _) in enumerate(rows) if kw == "USER")
    assert all(kw != "RUN" for kw, _ in rows[last_user:]), "nothing may run as root after USER"
    entrypoint = json.loads(next(rest for kw, rest in rows if kw == "ENTRYPOINT"))
    assert entrypoint == ["pvemcp", "serve"]  # exec form: signals reach pvemcp; `--http HOST:PORT` appends
    assert "8765" in next(rest for kw, rest in rows if kw == "EXPOSE")
    for kw, rest in rows:
        if kw == "COPY":
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (REPO / source).exists(), source


@pytest.mark.timeout(900)
def test_dockerfile_install_command_works_in_a_fresh_venv(tmp_path: Path) -> None:
    """The image's install step, in a fresh venv from a copy of the build context (PyPI for dependencies)."""
    context = tmp_path / "context"
    context.mkdir()
    for kw, rest in _instructions():
        if kw == "COPY":
            *sources, dest = shlex.split(rest)
            for source in sources:
                target = context / (source if dest.endswith("/") or dest == "./" else dest)
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(REPO / source, target)
    install = next(rest for kw, rest in _instructions() if kw == "RUN").split("&&")[0].split()
    assert install[:2] == ["pip", "install"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # --no-cache-dir keeps the image small; here the pip cache may serve the downloads
    args = [a for a in install[2:] if a != "--no-cache-dir"]
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    size = subprocess.run(
        [str(venv / "bin" / "pvemcp"), "tools", "--size"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PVEMCP_CACHE_DIR": "off"},
    )
    assert size.returncode == 0, size.stderr
    expected = subprocess.run(
        [sys.executable, "-m", "pvemcp", "tools", "--size"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PVEMCP_CACHE_DIR": "off"},
    )
    assert size.stdout == expected.stdout
