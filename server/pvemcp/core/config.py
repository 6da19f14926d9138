"""Server configuration: which clusters to talk to and under which policy.

Sources, in order: a TOML file (``--config`` or ``PVEMCP_CONFIG``) with ``[clusters.NAME]`` tables
and a ``[policy]`` table, then the environment names users of other Proxmox tools already know
(``PROXMOX_URL``, ``PROXMOX_TOKEN_ID``, ``PROXMOX_TOKEN_SECRET`` / ``_FILE``, ``PROXMOX_USER``,
``PROXMOX_PASSWORD`` / ``_FILE``, ``PROXMOX_VERIFY_TLS=0`` or ``PROXMOX_INSECURE=1``, ``PROXMOX_CA_FILE``,
``PROXMOX_FINGERPRINT``)
which define the cluster ``default`` when the file defines none. Policy env overrides (``PVEMCP_*``)
apply on top of the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvemcp.core.policy.config import PolicyConfig
from pvemcp.core.pve.config import ClientConfig, ConfigError

ENV_PREFIX = "PROXMOX_"
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


def _cluster_from_table(name: str, table: Mapping[str, Any]) -> ClientConfig:
    unknown = sorted(set(table) - _CLUSTER_KEYS)
    if unknown:
        raise ConfigError(f"[clusters.{name}]: unknown key(s) {', '.join(unknown)}")
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
    clusters: dict[str, ClientConfig] = {}
    for name, table in (document.get("clusters") or {}).items():
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
