"""What a Proxmox operation demands of the caller, read from the schema's ``permissions`` of that operation.

Every operation of PVE's API schema carries a ``permissions`` object, written next to the handler that
enforces it (e.g. proxmox/qemu-server ``src/PVE/API2/Qemu.pm``, ``create_vm``). It takes three shapes:

- ``{"check": [...]}``: a tree PVE's RPC environment evaluates before the handler runs
  (proxmox/pve-access-control ``src/PVE/RPCEnvironment.pm``, ``check_api2_permissions``): ``perm PATH
  [PRIVS] [any 1]``, ``and``, ``or``, and checks about the user itself (``userid-param`` ...);
- ``{"user": "all", "description": "..."}``: any authenticated caller passes the gate and the *handler*
  checks privileges itself; the description names them ("You need 'VM.Allocate' permissions on
  /vms/{vmid} ..."), and it is the only machine-readable trace of them;
- no ``permissions`` at all: only ``root@pam`` may call it.

Two questions are answered from that, for ``pvemcp check`` and ``pvemcp token-recipe``:

- *may this token run the operation at all?* — the structured check, else the description's first
  sentence that names a privilege (the gate the handler applies to every call; later sentences are
  about optional parameters or extra resources);
- *which privileges does a least-privilege role need?* — the structured check plus the description's
  unconditional sentences: those naming a root-only restriction, a mode ("For restore ...") or an
  optional parameter ('todisk', 'prune-backups', ...) are left out, because granting for them would
  no longer be least privilege.

The match of privileges against ``GET /access/permissions`` is an estimate: PVE also evaluates pools and
per-object ACLs at call time. It is a report for a person, never an enforcement point.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Levels of a permission estimate, comparable: and = min, or = max.
NO, PARTLY, YES = 0, 1, 2
LEVEL_NAMES = {NO: "no", PARTLY: "partly", YES: "yes"}

# PVE's privilege names (proxmox/pve-access-control src/PVE/AccessControl.pm, $privgroups and friends)
# all start with one of these groups.
_GROUPS = "VM|Datastore|Sys|SDN|Pool|User|Group|Realm|Permissions|Mapping"
_PRIVILEGE = re.compile(rf"\b(?:{_GROUPS})\.[A-Za-z][A-Za-z.]*[A-Za-z]")
_PATH = re.compile(r"'?(/(?:[a-z]+)(?:/[<{][a-z]+[>}])?)'?")
_QUOTED = re.compile(r"'([^']+)'")
_CONDITIONAL_START = ("For ",)


@dataclass(frozen=True)
class Requirement:
    """Privileges on one ACL path template: all of them, or any one (``any_of``)."""

    path: str
    privileges: tuple[str, ...]
    any_of: bool = False


def _sentences(text: str) -> list[str]:
    """Split a permission description into sentences without cutting privilege names at their dots."""
    names: list[str] = []

    def hide(match: re.Match[str]) -> str:
        names.append(match.group(0))
        return f"\x00{len(names) - 1}\x00"

    hidden = _PRIVILEGE.sub(hide, text)
    parts = re.split(r"\.(?:\s+|(?=[A-Z]))", hidden)
    return [re.sub(r"\x00(\d+)\x00", lambda m: names[int(m.group(1))], part).strip() for part in parts if part.strip()]


def _path_of(sentence: str) -> str:
    match = _PATH.search(sentence)
    if match is None:
        return "/"
    return re.sub(r"<([a-z]+)>", r"{\1}", match.group(1))


def _is_unconditional(sentence: str) -> bool:
    """A sentence about every call: not a root-only restriction, a mode, or an optional parameter."""
    if "root@pam" in sentence or sentence.startswith(_CONDITIONAL_START):
        return False
    quoted = _QUOTED.findall(sentence)
    return all(_PRIVILEGE.fullmatch(q) or q.startswith("/") for q in quoted)


def _described(sentence: str) -> Requirement | None:
    privileges = tuple(dict.fromkeys(_PRIVILEGE.findall(sentence)))
    if not privileges:
        return None
    any_of = len(privileges) > 1 and re.search(r"'\s+or\s+'", sentence) is not None
    return Requirement(_path_of(sentence), privileges, any_of)


def gate_check(rule: Mapping[str, Any] | None) -> list[Any] | None:
    """The check PVE applies to every call of the operation, as a ``check`` tree; None = no privilege."""
    if rule is None:
        return None
    if rule.get("check") is not None:
        return list(rule["check"])
    for sentence in _sentences(str(rule.get("description") or "")):
        req = _described(sentence)
        if req is not None:
            return ["perm", req.path, list(req.privileges), *(["any", 1] if req.any_of else [])]
    return None


def recipe_requirements(rule: Mapping[str, Any] | None) -> list[Requirement]:
    """The privileges a least-privilege role needs for every ordinary call of the operation."""
    if rule is None:
        return []
    found: list[Requirement] = []
    if rule.get("check") is not None:
        found.extend(_from_check(rule["check"]))
    for sentence in _sentences(str(rule.get("description") or "")):
        if _is_unconditional(sentence):
            req = _described(sentence)
            if req is not None:
                found.append(req)
    return found


def _from_check(check: Sequence[Any]) -> list[Requirement]:
    kind = check[0] if check else ""
    if kind == "and":
        return [req for sub in check[1:] for req in _from_check(sub)]
    if kind == "or":  # the first alternative is the ordinary one (e.g. /vms/{newid} before /pool/{pool})
        return _from_check(check[1]) if len(check) > 1 else []
    if kind == "perm" and len(check) >= 3:
        return [Requirement(str(check[1]), tuple(str(p) for p in check[2]), _any_of(check))]
    return []  # userid-param, userid-group, ...: about the user itself, not a privilege


def _any_of(check: Sequence[Any]) -> bool:
    options = list(check[3:])
    return bool(dict(zip(options[::2], options[1::2], strict=False)).get("any"))


def root_only(rule: Mapping[str, Any] | None) -> bool:
    """No permissions in the schema: only ``root@pam`` itself (not its tokens) may call it."""
    return rule is None


def permission_level(rule: Mapping[str, Any] | None, privs: Mapping[str, set[str]], identity: str) -> int:
    """Estimate whether the privileges in ``privs`` (path -> names) pass one operation's gate."""
    if root_only(rule):
        return YES if identity.startswith("root@pam") and "!" not in identity else NO
    check = gate_check(rule)
    if check is None:
        return YES
    return check_level(check, privs)


def check_level(check: Sequence[Any], privs: Mapping[str, set[str]]) -> int:
    kind = check[0] if check else ""
    if kind == "and":
        return min((check_level(c, privs) for c in check[1:]), default=YES)
    if kind == "or":
        return max((check_level(c, privs) for c in check[1:]), default=NO)
    if kind == "perm" and len(check) >= 3:
        return _perm_level(str(check[1]), [str(p) for p in check[2]], _any_of(check), privs)
    return YES


def _perm_level(template: str, needed: Sequence[str], any_of: bool, privs: Mapping[str, set[str]]) -> int:
    prefix = template.split("{", 1)[0].rstrip("/") or "/"

    def satisfied(have: set[str]) -> bool:
        return any(p in have for p in needed) if any_of else all(p in have for p in needed)

    inherited: set[str] = set()
    for path, have in privs.items():
        if path == "/" or prefix == path or prefix.startswith(path.rstrip("/") + "/"):
            inherited |= have
    if satisfied(inherited):
        return YES
    for path, have in privs.items():
        if path.startswith(prefix + "/") and satisfied(inherited | have):
            return PARTLY
    return NO
