"""The config file and the environment: every unknown name stops the load (file) or is warned about (env)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from pvemcp.core.config import OTHER_TOOLS_ENV, known_env, load_app_config, unknown_env
from pvemcp.core.policy.config import ENV_OVERRIDES, PolicyConfigError
from pvemcp.core.pve.config import ConfigError

CLUSTER = """
[clusters.prod]
url = "https://pve1.example:8006"
token_id = "pvemcp@pve!mcp"
token_secret = "s3cret"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pvemcp.toml"
    path.write_text(text)
    return path


def test_a_valid_file_loads(tmp_path: Path) -> None:
    config = load_app_config(
        write(tmp_path, 'tools_file = "t.yaml"\n' + CLUSTER + "[policy]\nread_only = true\n"), env={}
    )
    assert config.cluster_names == ("prod",) and config.policy.read_only and config.tools_file == Path("t.yaml")


def test_misspelled_policy_table_stops_the_load(tmp_path: Path) -> None:
    """Issue 10, item 8: `[polcy] read_only = true` used to load and leave the server writable."""
    path = write(tmp_path, CLUSTER + "[polcy]\nread_only = true\n")
    with pytest.raises(ConfigError) as info:
        load_app_config(path, env={})
    message = str(info.value)
    assert "unknown key or table [polcy] (did you mean policy?)" in message and str(path) in message


def test_misspelled_policy_key_stops_the_load(tmp_path: Path) -> None:
    with pytest.raises(PolicyConfigError) as info:
        load_app_config(write(tmp_path, CLUSTER + "[policy]\nread_onyl = true\n"), env={})
    assert str(info.value).startswith("policy.read_onyl: unknown key (did you mean read_only?)")


def test_misspelled_cluster_key_stops_the_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_app_config(write(tmp_path, CLUSTER + 'fingerprnt = "AB:CD"\n'), env={})
    assert "[clusters.prod]: unknown key fingerprnt (did you mean fingerprint?)" in str(info.value)


def test_clusters_must_be_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[clusters\] must be a table"):
        load_app_config(write(tmp_path, 'clusters = "prod"\n'), env={})


def test_unknown_variables_are_warned_with_the_nearest_name() -> None:
    env = {
        "PVEMCP_READONLY": "1",
        "PROXMOX_TOKEN_SECRT": "x",
        "PROXMOX_HOST": "pve1",
        "PROXMOX_URL": "https://pve1:8006",
        "PVEMCP_AUDIT_LOG": "/l",
        "HOME": "/root",
    }
    assert unknown_env(env) == [
        "environment variable PROXMOX_HOST is not used by pvemcp (use PROXMOX_URL); it has no effect",
        "environment variable PROXMOX_TOKEN_SECRT is not used by pvemcp (did you mean PROXMOX_TOKEN_SECRET?); "
        "it has no effect",
        "environment variable PVEMCP_READONLY is not used by pvemcp (did you mean PVEMCP_READ_ONLY?); it has no effect",
    ]


def test_load_warns_about_unknown_variables(caplog: pytest.LogCaptureFixture) -> None:
    env = {"PROXMOX_URL": "https://pve1:8006", "PROXMOX_TOKEN_ID": "pvemcp@pve!mcp", "PROXMOX_TOKEN_SECRET": "s"}
    with caplog.at_level(logging.WARNING, logger="pvemcp"):
        config = load_app_config(None, env={**env, "PVEMCP_TOOLSET": "guests"})
    assert config.policy.toolsets is None  # the misspelled variable did nothing ...
    assert "PVEMCP_TOOLSET is not used by pvemcp (did you mean PVEMCP_TOOLSETS?)" in caplog.text  # ... and says so


def test_every_variable_the_code_reads_is_known() -> None:
    """The tables are the list: every PVEMCP_/PROXMOX_ name quoted in the server's code is in them."""
    src = Path(__file__).resolve().parents[2] / "server" / "pvemcp"
    quoted: set[str] = set()
    for path in src.rglob("*.py"):
        if "sim" not in path.relative_to(src).parts:
            quoted |= set(re.findall(r'"((?:PVEMCP|PROXMOX)_[A-Z0-9_]+)"', path.read_text()))
    assert set(ENV_OVERRIDES) <= known_env()
    assert "PVEMCP_HTTP_TOKEN" in quoted and "PVEMCP_READ_ONLY" in quoted
    assert sorted(quoted - known_env() - set(OTHER_TOOLS_ENV)) == []
