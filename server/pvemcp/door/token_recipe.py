"""``pvemcp token-recipe``: the least-privilege role for the enabled tools, computed from the API schema.

The privileges are not a hand-kept list: each tool's operations carry PVE's own ``permissions`` in the
schema, and ``pvemcp.core.pve.privileges`` reads what an ordinary call needs from them. Where an
operation accepts any one of several privileges, a read tool gets the first (the read privilege, e.g.
``Datastore.Audit`` before ``Datastore.AllocateSpace``) unless another tool already needs one of them;
a mutating tool gets all of them, because PVE then checks each option against its own privilege
(proxmox/qemu-server ``src/PVE/API2/Qemu.pm``, ``check_vm_modify_config_perm``).

The output is shell, quoted for an interactive bash (the token id's ``!``), and uses ``pveum``'s
current sub-commands (``acl modify``, ``user token add``), each option a parameter of the API call
behind it (``POST /access/roles``, ``POST /access/users``, ``POST /access/users/{userid}/token/{tokenid}``,
``PUT /access/acl``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from pvemcp.dialect.model import Spec
from pvemcp.door._core import Requirement, ToolDef, recipe_requirements, root_only


@dataclass
class Recipe:
    """The privileges, which tools need each one, and the tools no role can enable (root@pam only)."""

    privileges: dict[str, list[str]] = field(default_factory=dict)
    root_only: list[str] = field(default_factory=list)

    def add(self, privilege: str, tool: str) -> None:
        users = self.privileges.setdefault(privilege, [])
        if tool not in users:
            users.append(tool)


def compute_recipe(tools: Sequence[ToolDef], spec: Spec) -> Recipe:
    """The least set of privileges under which every tool in ``tools`` can run its ordinary calls."""
    recipe = Recipe()
    choices: list[tuple[ToolDef, Requirement]] = []
    for tool in tools:
        for key in dict.fromkeys(op for op in tool.operations.values() if op):
            try:
                rule = spec.operation(key).permissions
            except KeyError:
                continue
            if root_only(rule):
                if tool.name not in recipe.root_only:
                    recipe.root_only.append(tool.name)
                continue
            for req in recipe_requirements(rule):
                if req.any_of:
                    choices.append((tool, req))
                else:
                    for privilege in req.privileges:
                        recipe.add(privilege, tool.name)
    for tool, req in choices:  # after every "all of": an alternative already granted costs nothing
        held = [p for p in req.privileges if p in recipe.privileges]
        if held:
            recipe.add(held[0], tool.name)
        elif tool.mutating:
            for privilege in req.privileges:
                recipe.add(privilege, tool.name)
        else:
            recipe.add(req.privileges[0], tool.name)
    recipe.privileges = dict(sorted(recipe.privileges.items()))
    return recipe


def render(recipe: Recipe, *, role: str, user: str, token: str, toolsets: Sequence[str]) -> str:
    """The commands to run on a PVE node as root, with the reason for every privilege as a comment."""
    token_id = f"{user}!{token}"
    lines = [
        "# Least-privilege API token for pvemcp, derived from the permissions of the Proxmox API",
        "# operations its tools drive. Run on a PVE node as root.",
        f"# Toolsets: {', '.join(toolsets)}",
        "# Privilege: the tools that need it",
    ]
    lines += [f"#   {p}: {', '.join(tools)}" for p, tools in recipe.privileges.items()]
    if recipe.root_only:
        lines.append(f"# Only root@pam itself can run: {', '.join(recipe.root_only)} (no role grants that)")
    privs = ",".join(recipe.privileges)
    q = shlex.quote
    lines += [
        f"pveum role add {q(role)} --privs {q(privs)}",
        f"pveum user add {q(user)} --comment {q('pvemcp MCP server')}",
        f"pveum user token add {q(user)} {q(token)} --privsep 1    # prints the secret once: keep it",
        f"pveum acl modify / --users {q(user)} --roles {q(role)}",
        f"pveum acl modify / --tokens {q(token_id)} --roles {q(role)}",
        "# then: PROXMOX_TOKEN_ID=" + q(token_id) + " and the secret in PROXMOX_TOKEN_SECRET_FILE",
    ]
    return "\n".join(lines)
