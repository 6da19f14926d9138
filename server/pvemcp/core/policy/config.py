"""Operator policy configuration: the ``[policy]`` table of the config file plus env overrides.

Example (TOML)::

    [policy]
    read_only = false
    toolsets = ["guests", "snapshots"]      # omit for all toolsets
    confirm_fallback = "token"               # or "deny": only MCP elicitation can confirm
    confirm_ttl_s = 300
    audit_log = "/var/log/pvemcp/audit.jsonl"
    audit_key_file = "/etc/pvemcp/audit.key" # default: <audit_log>.key

    [policy.rules]                           # risk class, tool or operation -> allow | confirm | deny
    destructive = "confirm"
    guest_delete = "deny"                    # a tool rule wins over its risk class
    "DELETE /nodes/{node}/qemu/{vmid}" = "deny"   # an operation of openapi.json, "METHOD /path"

    [policy.scope]                           # omit a key for "unrestricted"
    nodes = ["pve1", "pve2"]
    vmids = ["100-199", 250]
    pools = ["agents"]
    tags = ["agent"]

Environment (wins over the file): ``PVEMCP_READ_ONLY=1``, ``PVEMCP_AUDIT_LOG=path``,
``PVEMCP_AUDIT_KEY_FILE=path``, ``PVEMCP_TOOLSETS=a,b`` (``all`` = every toolset),
``PVEMCP_CONFIRM_FALLBACK=token|deny``.

Validation is strict on purpose: this is security configuration, and a typo (``read_onyl``) that
silently did nothing would leave an operator believing a guard is on. Every error is a
:class:`PolicyConfigError` whose message starts with the exact key (``policy.rules.destructive``,
``PVEMCP_READ_ONLY``) and, for an unknown name, proposes the nearest valid one. Rule names are
checked against the catalog and the API by :func:`check_rule_names` once those are loaded.

Adding a key: one line in :data:`_TABLE_KEYS` (its parser) beside the :class:`PolicyConfig` field of the
same name; an environment override is one more line in :data:`ENV_OVERRIDES`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, cast

from pvemcp.core.policy.risk_class import Risk
from pvemcp.core.policy.scope import Scope
from pvemcp.dialect.tags import tag_list

__all__ = [
    "DEFAULT_RULES",
    "ENV_OVERRIDES",
    "Action",
    "ConfirmFallback",
    "PolicyConfig",
    "PolicyConfigError",
    "check_rule_names",
    "did_you_mean",
    "load_policy",
    "parse_scope",
]


class Action(StrEnum):
    """What the policy does with a call: run it, ask first, or refuse."""

    ALLOW = "allow"
    CONFIRM = "confirm"
    DENY = "deny"


ConfirmFallback = Literal["token", "deny"]

# A rule names a risk class by its word (the rules are keyed by the operator's names: class, tool, operation).
RISK_KEYS: tuple[str, ...] = tuple(r.value for r in Risk)
DEFAULT_RULES: Mapping[str, Action] = {
    Risk.READ.value: Action.ALLOW,
    Risk.WRITE.value: Action.ALLOW,
    Risk.DESTRUCTIVE.value: Action.CONFIRM,
}
# Tools that stay off until the operator turns them on by name: used by ``decide`` when the rules have
# no entry for the tool. guest_exec runs arbitrary commands inside VMs; "allow" is refused for it
# (PolicyConfig.__post_init__): it is always confirmed, so the person sees the exact command.
DEFAULT_TOOL_RULES: Mapping[str, Action] = {"guest_exec": Action.DENY}
ALWAYS_CONFIRMED = frozenset({"guest_exec"})
# Operations no curated tool drives that give the same power as one of ALWAYS_CONFIRMED, so they count
# as driven by it: writing a file into a VM plants code as surely as running it, setting a user's
# password takes the guest over, and reading any file of a VM reads its secrets (qemu-server
# API2/Qemu/Agent.pm file-write, set-user-password, file-read; the generic ``agent`` command has no such
# verb). The generic API reaches them only as guest_exec's rule allows.
ALSO_DRIVEN_BY: Mapping[str, tuple[str, ...]] = {
    "POST /nodes/{node}/qemu/{vmid}/agent/file-write": ("guest_exec",),
    "POST /nodes/{node}/qemu/{vmid}/agent/set-user-password": ("guest_exec",),
    "GET /nodes/{node}/qemu/{vmid}/agent/file-read": ("guest_exec",),
}
MAX_TTL_S = 86_400


class PolicyConfigError(ValueError):
    """Invalid policy configuration; ``key`` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.detail = message
        super().__init__(f"{key}: {message}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the nearest of ``known`` to ``name``, or an empty string."""
    choices = list(known)
    nearest = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not nearest:  # a case or separator slip (READ-ONLY) still deserves a proposal
        folded = {re.sub(r"[^a-z0-9]", "", c.lower()): c for c in choices}
        hit = folded.get(re.sub(r"[^a-z0-9]", "", name.lower()))
        nearest = [hit] if hit else []
    return f" (did you mean {nearest[0]}?)" if nearest else ""


def unknown_key(key: str, name: str, known: Collection[str]) -> PolicyConfigError:
    """The error for an unknown ``name`` at ``key``: the nearest valid name, then every valid one."""
    return PolicyConfigError(key, f"unknown key{did_you_mean(name, known)}; known: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class PolicyConfig:
    """The operator's policy. Construct with :meth:`from_mapping` / :func:`load_policy`."""

    rules: Mapping[str, Action] = field(default_factory=lambda: dict(DEFAULT_RULES))
    """Risk class (``read``/``write``/``destructive``) or tool name -> action; always has the 3 classes."""
    read_only: bool = False
    toolsets: tuple[str, ...] | None = None
    """Toolsets to list; ``None`` = all."""
    confirm_fallback: ConfirmFallback = "token"
    scope: Scope = field(default_factory=Scope)
    audit_log: Path | None = None
    audit_key_file: Path | None = None
    confirm_ttl_s: float = 300.0
    elicitation_timeout_s: float = 300.0
    """How long a confirmation question waits for an answer; past it the call ends, nothing sent."""
    safety_snapshot: bool = False
    """Before a rollback, a restore over a guest or a delete: a snapshot (rollback) or a backup first."""
    state_url: str | None = None
    """Shared state for several replicas (``postgresql://…``); ``None`` keeps state in this process and files."""
    secret_key_file: Path | None = None
    """Key shared by replicas for confirm tokens and sealed request state; ``None`` = a random key per process."""
    rate_limit_per_minute: int | None = None
    """Tool calls one caller may make per minute (across replicas with ``state_url``); ``None`` = unlimited."""

    def __post_init__(self) -> None:
        for name in ALWAYS_CONFIRMED:
            if self.rules.get(name) is Action.ALLOW:
                raise PolicyConfigError(f"policy.rules.{name}", 'cannot be "allow": use "confirm" (or "deny")')

    @property
    def audit_key_path(self) -> Path | None:
        """Where the ledger's HMAC key lives: the configured file, else ``<audit_log>.key``."""
        if self.audit_key_file is not None:
            return self.audit_key_file
        if self.audit_log is None:
            return None
        return self.audit_log.with_name(self.audit_log.name + ".key")

    @classmethod
    def from_mapping(
        cls,
        section: Mapping[str, Any] | None,
        *,
        env: Mapping[str, str] | None = None,
        prefix: str = "policy",
    ) -> PolicyConfig:
        """Build from the ``[policy]`` table (already parsed, e.g. by ``tomllib``); ``None`` = defaults.

        With ``env``, the ``PVEMCP_*`` overrides are applied on top (:meth:`with_env`); without it the
        result depends on the table alone, which is what tests want.
        """
        config = cls._from_table(section, prefix)
        return config.with_env(env) if env is not None else config

    @classmethod
    def _from_table(cls, section: Mapping[str, Any] | None, prefix: str) -> PolicyConfig:
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise PolicyConfigError(prefix, f"must be a table, got {type(section).__name__}")
        for key in section:
            if key not in _TABLE_KEYS:
                raise unknown_key(f"{prefix}.{key}", str(key), _TABLE_KEYS)
        values: dict[str, Any] = {
            key: parse(section[key], f"{prefix}.{key}") for key, parse in _TABLE_KEYS.items() if key in section
        }
        return cls(**values)

    def with_env(self, env: Mapping[str, str]) -> PolicyConfig:
        """Apply ``PVEMCP_*`` overrides (:data:`ENV_OVERRIDES`); empty variables are ignored."""
        changes: dict[str, Any] = {}
        for variable, (name, parse) in ENV_OVERRIDES.items():
            raw = env.get(variable, "").strip()
            if raw:
                changes[name] = parse(raw, variable)
        return replace(self, **changes) if changes else self

    def settings(self) -> dict[str, Any]:
        """Every ``[policy]`` key with its value in force, as plain JSON values (for the effective-policy report)."""
        out: dict[str, Any] = {}
        for key in _TABLE_KEYS:
            value = getattr(self, key, None)
            if key == "scope":
                value = self.scope.describe()
            elif key == "state_url" and isinstance(value, str):
                value = hide_password(value)
            elif isinstance(value, Mapping):
                value = {str(k): str(v) for k, v in value.items()}
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out


def load_policy(document: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> PolicyConfig:
    """Policy from a whole parsed config document (its ``policy`` table) plus the environment.

    ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment (tests).
    """
    section = None
    if document is not None:
        if not isinstance(document, Mapping):
            raise PolicyConfigError("config", f"must be a table, got {type(document).__name__}")
        section = document.get("policy")
    return PolicyConfig.from_mapping(section, env=os.environ if env is None else env)


# --------------------------------------------------------------------------------------------


def _parse_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise PolicyConfigError(key, f"must be true or false, got {value!r}")


def _parse_bool_text(value: str, key: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise PolicyConfigError(key, f"must be 1 or 0 (or true/false), got {value!r}")


def _parse_action(value: Any, key: str) -> Action:
    if isinstance(value, str):
        try:
            return Action(value.strip().lower())
        except ValueError:
            pass
    raise PolicyConfigError(key, f"must be one of allow, confirm, deny; got {value!r}")


_OPERATION = re.compile(r"^\s*(GET|POST|PUT|DELETE)\s+(/\S*)\s*$", re.IGNORECASE)


def rule_name(name: str) -> str:
    """The canonical form of a rule name: stripped; an operation as ``"METHOD /path"`` (upper-case method)."""
    m = _OPERATION.match(name)
    return f"{m.group(1).upper()} {m.group(2)}" if m else name.strip()


def _parse_rules(value: Any, key: str) -> dict[str, Action]:
    if not isinstance(value, Mapping):
        raise PolicyConfigError(key, f'must be a table of name = "allow|confirm|deny", got {value!r}')
    rules: dict[str, Action] = dict(DEFAULT_RULES)
    for name, action in value.items():
        if not isinstance(name, str) or not name.strip():
            raise PolicyConfigError(key, f"rule names must be non-empty strings, got {name!r}")
        rules[rule_name(name)] = _parse_action(action, f"{key}.{name}")
    return rules


def check_rule_names(config: PolicyConfig, tools: Collection[str], operations: Callable[[], Collection[str]]) -> None:
    """Refuse a rule naming no risk class, no tool of the catalog and no operation of the API.

    ``tools`` are all the catalog's tools, listed or not (a rule for a tool of a toolset that is not
    enabled is legitimate); ``operations`` gives the API's ``"METHOD /path"`` keys and is called only
    when a rule names an operation (loading the API description costs time at startup).
    """
    known_ops: Collection[str] | None = None
    for name in config.rules:
        if name in RISK_KEYS or name in tools:
            continue
        key = f"policy.rules.{name}"
        m = _OPERATION.match(name)
        if m is None:
            if "/" in name or " " in name:
                raise PolicyConfigError(
                    key, 'an operation rule is "METHOD /path", e.g. "DELETE /nodes/{node}/qemu/{vmid}"'
                )
            hint = did_you_mean(name, [*RISK_KEYS, *tools])
            raise PolicyConfigError(key, f"no risk class (read, write, destructive) or tool is named {name}{hint}")
        if known_ops is None:
            known_ops = operations()
        if name not in known_ops:
            method = m.group(1).upper()
            same_method = [op.split(" ", 1)[1] for op in known_ops if op.startswith(method + " ")]
            hint = did_you_mean(m.group(2), same_method)
            hint = hint.replace("did you mean ", f"did you mean {method} ") if hint else ""
            raise PolicyConfigError(key, f"the Proxmox VE API has no operation {name}{hint}")


def _parse_toolsets(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyConfigError(key, f"must be a list of toolset names, got {value!r}")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _parse_fallback(value: Any, key: str) -> ConfirmFallback:
    if isinstance(value, str) and value.strip().lower() in ("token", "deny"):
        return cast(ConfirmFallback, value.strip().lower())
    raise PolicyConfigError(key, f"must be 'token' or 'deny', got {value!r}")


def _parse_ttl(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TTL_S:
        raise PolicyConfigError(key, f"must be a number of seconds in (0, {MAX_TTL_S}], got {value!r}")
    return float(value)


def _parse_path(value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise PolicyConfigError(key, f"must be a non-empty path string, got {value!r}")
    return Path(value.strip()).expanduser()


def _parse_names(value: Any, key: str) -> frozenset[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyConfigError(key, f"must be a list of names, got {value!r}")
    return frozenset(v.strip() for v in value)


_RANGE_TEXT = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def _parse_range(item: Any, key: str) -> tuple[int, int]:
    if isinstance(item, int) and not isinstance(item, bool):
        lo = hi = item
    elif isinstance(item, str) and (m := _RANGE_TEXT.match(item)):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
    elif (
        isinstance(item, list | tuple)
        and len(item) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
    ):
        lo, hi = item
    else:
        raise PolicyConfigError(key, f'VMID ranges are 100, "100-199" or [100, 199]; got {item!r}')
    if lo < 0 or lo > hi:
        raise PolicyConfigError(key, f"VMID range {item!r} is empty or negative")
    return (lo, hi)


def parse_scope(value: Any, key: str = "policy.scope") -> Scope:
    """Build a :class:`Scope` from its table: ``nodes``, ``vmids`` (alias ``vmid_ranges``), ``pools``, ``tags``."""
    if not isinstance(value, Mapping):
        raise PolicyConfigError(key, f"must be a table, got {value!r}")
    known = ("nodes", "pools", "tags", "vmids")
    for k in value:
        if k not in known and k != "vmid_ranges":  # vmid_ranges: accepted alias of vmids
            raise unknown_key(f"{key}.{k}", str(k), known)
    if "vmids" in value and "vmid_ranges" in value:
        raise PolicyConfigError(f"{key}.vmid_ranges", "give either vmids or vmid_ranges, not both")
    vkey = "vmids" if "vmids" in value else "vmid_ranges"
    ranges: tuple[tuple[int, int], ...] | None = None
    if vkey in value:
        raw = value[vkey]
        if not isinstance(raw, list | tuple):
            raise PolicyConfigError(f"{key}.{vkey}", f"must be a list of VMIDs or ranges, got {raw!r}")
        ranges = tuple(_parse_range(item, f"{key}.{vkey}") for item in raw)
    tags = value.get("tags")
    if isinstance(tags, str):
        tags = list(tag_list(tags))
    return Scope(
        nodes=_parse_names(value["nodes"], f"{key}.nodes") if "nodes" in value else None,
        vmid_ranges=ranges,
        pools=_parse_names(value["pools"], f"{key}.pools") if "pools" in value else None,
        tags=_parse_names(tags, f"{key}.tags") if "tags" in value else None,
    )


def _parse_state_url(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip().startswith(("postgresql://", "postgres://")):
        raise PolicyConfigError(key, "must be a PostgreSQL URL (postgresql://user@host:5432/db)")
    return value.strip()


def _parse_rate(value: Any, key: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyConfigError(key, f"must be a whole number of calls per minute (at least 1), got {value!r}")
    return value


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***``: safe for reports and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


#: The keys of the ``[policy]`` table, each with the parser that turns its value into the
#: :class:`PolicyConfig` field of the same name; also the list of known keys. Parsed in this order.
_TABLE_KEYS: Mapping[str, Callable[[Any, str], Any]] = {
    "rules": _parse_rules,
    "read_only": _parse_bool,
    "toolsets": _parse_toolsets,
    "confirm_fallback": _parse_fallback,
    "confirm_ttl_s": _parse_ttl,
    "elicitation_timeout_s": _parse_ttl,
    "scope": parse_scope,
    "audit_log": _parse_path,
    "audit_key_file": _parse_path,
    "safety_snapshot": _parse_bool,
    "state_url": _parse_state_url,
    "secret_key_file": _parse_path,
    "rate_limit_per_minute": _parse_rate,
}


def _parse_toolsets_text(raw: str, key: str) -> tuple[str, ...] | None:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    return None if names in (["all"], ["*"]) else _parse_toolsets(names, key)


def _parse_path_text(raw: str, key: str) -> Path:
    return Path(raw).expanduser()


#: The ``PVEMCP_*`` variables that override a ``[policy]`` key: variable -> (key, parser of the text).
ENV_OVERRIDES: Mapping[str, tuple[str, Callable[[str, str], Any]]] = {
    "PVEMCP_READ_ONLY": ("read_only", _parse_bool_text),
    "PVEMCP_AUDIT_LOG": ("audit_log", _parse_path_text),
    "PVEMCP_AUDIT_KEY_FILE": ("audit_key_file", _parse_path_text),
    "PVEMCP_TOOLSETS": ("toolsets", _parse_toolsets_text),
    "PVEMCP_CONFIRM_FALLBACK": ("confirm_fallback", _parse_fallback),
    "PVEMCP_STATE_URL": ("state_url", _parse_state_url),
    "PVEMCP_SECRET_KEY_FILE": ("secret_key_file", _parse_path_text),
    "PVEMCP_RATE_LIMIT_PER_MINUTE": ("rate_limit_per_minute", _parse_rate),
}
