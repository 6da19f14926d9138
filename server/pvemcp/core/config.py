"""Server configuration: which clusters to talk to and under which policy.

Sources, in order: a TOML file (``--config`` or ``PVEMCP_CONFIG``) with ``[clusters.NAME]`` tables
and a ``[policy]`` table, then the environment names users of other Proxmox tools already know
(``PROXMOX_URL``, ``PROXMOX_TOKEN_ID``, ``PROXMOX_TOKEN_SECRET`` / ``_FILE``, ``PROXMOX_USER``,
``PROXMOX_PASSWORD`` / ``_FILE``, ``PROXMOX_VERIFY_TLS=0`` or ``PROXMOX_INSECURE=1``, ``PROXMOX_CA_FILE``,
``PROXMOX_FINGERPRINT``)
which define the cluster ``default`` when the file defines none. Policy env overrides (``PVEMCP_*``)
apply on top of the file.

Every name is checked: an unknown key at any level of the file is a :class:`ConfigError` (or a
``PolicyConfigError`` inside ``[policy]``) naming the key and the nearest valid one; an unknown
``PVEMCP_*`` or ``PROXMOX_*`` variable is warned about (the environment is shared with other tools,
so it cannot be an error). Adding a top-level key or a variable is one line in its table below.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvemcp.core.policy.config import ENV_OVERRIDES, PolicyConfig, did_you_mean
from pvemcp.core.pve.config import ENV_SUFFIXES, ClientConfig, ConfigError

log = logging.getLogger("pvemcp")

ENV_PREFIX = "PROXMOX_"
#: Top-level keys of the config file.
TOP_LEVEL_KEYS = ("clusters", "policy", "tools_file")
#: ``PROXMOX_*`` variables read by :meth:`ClientConfig.from_env` (after the prefix): its own list.
PROXMOX_ENV = ENV_SUFFIXES
#: ``PVEMCP_*`` variables read outside the policy (the policy's own are ``ENV_OVERRIDES``).
PVEMCP_ENV = (
    "PVEMCP_CONFIG",
    "PVEMCP_LOG_LEVEL",
    "PVEMCP_HTTP_TOKEN",
    "PVEMCP_HTTP_TOKEN_FILE",
    "PVEMCP_HTTP_ALLOWED_HOSTS",
    "PVEMCP_CACHE_DIR",
    "PVEMCP_SPEC",
    "PVEMCP_TOOLS",
    "PVEMCP_SIM_APIDOC",
    # read by the project's test suite only
    "PVEMCP_MCPB_DIR",
    "PVEMCP_INSPECTOR_DIR",
    "PVEMCP_INSPECTOR_HOME",
    "PVEMCP_CONFORMANCE_DIR",
    "PVEMCP_CONFORMANCE_OUT",
)
#: Names other Proxmox tools read, and the variable of pvemcp that does their job.
OTHER_TOOLS_ENV = {
    "PROXMOX_HOST": "PROXMOX_URL",
    "PROXMOX_PORT": "PROXMOX_URL",
    "PROXMOX_VERIFY_SSL": "PROXMOX_VERIFY_TLS",
    "PROXMOX_TOKEN_NAME": "PROXMOX_TOKEN_ID",
    "PROXMOX_TOKEN_VALUE": "PROXMOX_TOKEN_SECRET",
}
_CLUSTER_KEYS = {
    "url",
    "token_id",
    "token_secret",
    "token_secret_file",
    "user",
    "password",
    "password_file",
    "verify_tls",
    "ca_file",
    "fingerprint",
    "insecure",
    "max_concurrency",
    "read_timeout_s",
    "mutate_timeout_s",
    "connect_timeout_s",
}


@dataclass(frozen=True)
class AppConfig:
    """Everything the App needs; built without touching the network."""

    clusters: Mapping[str, ClientConfig]
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    tools_file: Path | None = None

    @property
    def cluster_names(self) -> tuple[str, ...]:
        return tuple(self.clusters)


def known_env() -> frozenset[str]:
    """Every ``PVEMCP_*`` and ``PROXMOX_*`` variable pvemcp reads."""
    return frozenset([*PVEMCP_ENV, *ENV_OVERRIDES, *(ENV_PREFIX + n for n in PROXMOX_ENV)])


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """One warning per ``PVEMCP_*``/``PROXMOX_*`` variable pvemcp does not read, with the nearest known name."""
    known = known_env()
    return [
        f"environment variable {name} is not used by pvemcp"
        + (f" (use {OTHER_TOOLS_ENV[name]})" if name in OTHER_TOOLS_ENV else did_you_mean(name, known))
        + "; it has no effect"
        for name in sorted(env)
        if name.startswith(("PVEMCP_", ENV_PREFIX)) and name not in known
    ]


def _check_top_level(document: Mapping[str, Any], path: str | Path) -> None:
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"config file {path}: unknown key or table [{key}]{did_you_mean(str(key), TOP_LEVEL_KEYS)}; "
                f"known: {', '.join(TOP_LEVEL_KEYS)}"
            )


def _cluster_from_table(name: str, table: Mapping[str, Any]) -> ClientConfig:
    unknown = sorted(set(table) - _CLUSTER_KEYS)
    if unknown:
        raise ConfigError(
            f"[clusters.{name}]: unknown key {unknown[0]}{did_you_mean(unknown[0], _CLUSTER_KEYS)}; "
            f"known: {', '.join(sorted(_CLUSTER_KEYS))}"
        )
    if "url" not in table:
        raise ConfigError(f"[clusters.{name}]: url is required")
    return ClientConfig(**dict(table))


def load_app_config(config_path: str | Path | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Build the configuration from the TOML file (if any) and the environment."""
    env = os.environ if env is None else env
    path = config_path or env.get("PVEMCP_CONFIG") or None
    document: Mapping[str, Any] = {}
    if path:
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except OSError as exc:  # a directory, no permission, ...: a start-up error for a person
            raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        _check_top_level(document, path)
    for warning in unknown_env(env):
        log.warning("%s", warning)
    clusters: dict[str, ClientConfig] = {}
    tables = document.get("clusters") or {}
    if not isinstance(tables, Mapping):
        raise ConfigError("[clusters] must be a table of [clusters.NAME] tables")
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[clusters.{name}] must be a table")
        clusters[str(name)] = _cluster_from_table(str(name), table)
    if not clusters and env.get(ENV_PREFIX + "URL"):
        clusters["default"] = ClientConfig.from_env(env, prefix=ENV_PREFIX)
    if not clusters:
        raise ConfigError(
            "no Proxmox cluster configured: set PROXMOX_URL and PROXMOX_TOKEN_ID/PROXMOX_TOKEN_SECRET "
            "(or PVEMCP_CONFIG pointing to a TOML file with [clusters.NAME] tables); try `pvemcp demo`"
        )
    policy = PolicyConfig.from_mapping(document.get("policy") or {}, env=env)
    tools_file = document.get("tools_file")
    return AppConfig(clusters=clusters, policy=policy, tools_file=Path(tools_file) if tools_file else None)
