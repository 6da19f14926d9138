"""The README, tested: a newcomer copies its snippets, so each kind is checked against the code.

- JSON snippets parse;
- TOML snippets load through the real config loader (``load_app_config``), with the files they name;
- every ``PROXMOX_*`` / ``PVEMCP_*`` name it mentions is one pvemcp reads;
- shell snippets pass ``bash -n`` and are safe to paste into an interactive bash (no ``!`` outside
  single quotes: history expansion), and the commands they run exist (``pvemcp`` sub-commands and
  options through the real parser, scripts and bench files in the repository);
- figures the code can compute (tool count, tool-list size, ...) and the generated token recipe are
  current (``python scripts/readme_figures.py`` rewrites them).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pvemcp.cli import build_parser
from pvemcp.core.config import load_app_config

from .test_distribution import env_name_is_read

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
BLOCKS = [(lang, body) for lang, body in _FENCE.findall(README)]


def blocks(*langs: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang in langs]


def test_the_readme_has_every_kind_of_snippet() -> None:
    assert len(blocks("json")) >= 2 and len(blocks("toml")) >= 1 and len(blocks("bash")) >= 6


@pytest.mark.parametrize("body", blocks("json"), ids=lambda b: b.split("\n", 1)[0][:40])
def test_json_snippets_parse(body: str) -> None:
    document = json.loads(body)
    servers = document.get("mcpServers") or document.get("servers")
    for server in servers.values():
        env = server.get("env", {})
        for name in env:
            assert env_name_is_read(name), name
        if "PROXMOX_URL" in env:
            assert "PROXMOX_FINGERPRINT" in env, "a default PVE install has a self-signed certificate"


CLUSTER_ENV = {
    "PROXMOX_URL": "https://pve.example.com:8006",
    "PROXMOX_TOKEN_ID": "pvemcp@pve!mcp",
    "PROXMOX_TOKEN_SECRET": "00000000-1111-2222-3333-444444444444",
    "PROXMOX_FINGERPRINT": ":".join(["AB"] * 32),
}


@pytest.mark.parametrize("body", blocks("toml"))
def test_toml_snippets_load_through_the_config_loader(body: str, tmp_path: Path) -> None:
    document = tomllib.loads(body)
    text = body
    for table in (document.get("clusters") or {}).values():
        for key, value in table.items():
            if key.endswith("_file"):  # the secret files it names, made real
                secret = tmp_path / Path(value).name
                secret.write_text("00000000-1111-2222-3333-444444444444\n")
                text = text.replace(f'"{value}"', json.dumps(str(secret)))
    config_file = tmp_path / "pvemcp.toml"
    config_file.write_text(text)
    # a policy-only snippet is meant to sit beside a cluster from the environment
    env = {} if document.get("clusters") else CLUSTER_ENV
    config = load_app_config(config_path=config_file, env=env)
    assert config.clusters, "the example defines a cluster, or is a policy-only fragment"
    policy = document.get("policy", {})
    assert config.policy.read_only is policy.get("read_only", False)
    if "toolsets" in policy:
        assert list(config.policy.toolsets or ()) == policy["toolsets"]


def test_every_environment_variable_named_is_read_by_the_code() -> None:
    names = set(re.findall(r"\b(?:PROXMOX|PVEMCP)_[A-Z_]+[A-Z]\b", README))
    assert {"PROXMOX_URL", "PROXMOX_VERIFY_TLS", "PROXMOX_INSECURE", "PVEMCP_READ_ONLY"} <= names
    unknown = sorted(n for n in names if not env_name_is_read(n))
    assert not unknown, f"the README names variables pvemcp does not read: {unknown}"


def _unsafe_bang(line: str) -> bool:
    """A ``!`` that an interactive bash would history-expand: outside single quotes and not escaped."""
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            quote = "" if c == "'" else quote
        elif c == "\\":
            i += 1
        elif c == "#" and not quote and (i == 0 or line[i - 1].isspace()):
            return False
        elif c in "'\"" and (not quote or quote == c):
            quote = "" if quote == c else c
        elif c == "!" and i + 1 < len(line) and not line[i + 1].isspace() and line[i + 1] not in "=(":
            return True
        i += 1
    return False


def test_unsafe_bang_detector() -> None:
    assert _unsafe_bang("claude mcp add -e PROXMOX_TOKEN_ID=pvemcp@pve!mcp")
    assert _unsafe_bang('echo "pvemcp@pve!mcp"')  # double quotes do not stop history expansion
    assert not _unsafe_bang("echo 'pvemcp@pve!mcp'")
    assert not _unsafe_bang("echo hi   # not a !comment")


@pytest.mark.parametrize("body", blocks("bash", "sh", "shell"), ids=lambda b: b.split("\n", 1)[0][:40])
def test_shell_snippets_are_valid_and_safe_to_paste(body: str) -> None:
    done = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for line in body.splitlines():
        assert not _unsafe_bang(line), f"unquoted ! (history expansion in an interactive bash): {line}"
    for command in _commands(body):
        _check_command(command)
        if command[:3] == ["claude", "mcp", "add"] and any(w.startswith("PROXMOX_URL=") for w in command):
            assert any(w.startswith("PROXMOX_FINGERPRINT=") for w in command), "PVE's certificate is self-signed"


def _commands(body: str) -> list[list[str]]:
    joined = body.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        for part in re.split(r"&&|;|\|", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            if words:
                out.append(words)
    return out


def _check_command(words: list[str]) -> None:
    if words[0] == "pvemcp":
        parser = build_parser()
        try:
            parser.parse_args(words[1:])
        except SystemExit as exc:
            assert exc.code == 0, f"pvemcp rejects: {' '.join(words)}"
    elif words[0] == "bash" and len(words) > 1 and words[1].startswith("scripts/"):
        assert (REPO / words[1]).is_file(), words[1]
        if words[1] == "scripts/demo.sh":  # its options go to `pvemcp demo`
            _check_command(["pvemcp", "demo", *words[2:]])
    elif words[0] in ("python", "python3") and len(words) > 1 and words[1].endswith(".py"):
        assert (REPO / words[1]).is_file(), words[1]
    elif words[:2] == ["docker", "run"]:  # the image's ENTRYPOINT is `pvemcp serve`; the rest are its options
        image = words.index("pvemcp")
        _check_command(["pvemcp", "serve", *words[image + 1 :]])


def test_bench_and_script_references_exist() -> None:
    for path in set(re.findall(r"\b((?:bench|scripts)/[\w.-]+\.(?:py|sh))\b", README)):
        assert (REPO / path).is_file(), path


def test_figures_and_generated_blocks_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/readme_figures.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert README.count("<!-- figure:tool-list-chars -->") >= 3
