"""Turning a tool's arguments into Proxmox request arguments, checked against the operation's schema.

The tool schema the model sees is deliberately lean; this is where the full operation schema from
openapi.json is enforced (patterns, lengths, formats, unknown keys) before anything is sent, and
where structured property-string values (``net0: {model: virtio, bridge: vmbr0}``) become PVE's
``key=value`` strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pvemcp.core.tools.base import JsonDict, ToolError
from pvemcp.dialect.model import Operation
from pvemcp.dialect.upid import parse_upid

if TYPE_CHECKING:
    import jsonschema


def property_string_schema(op: Operation, name: str) -> JsonDict | None:
    """The property-string sub-schema of parameter ``name`` (indexed names like net0 included)."""
    schema = op.input_schema
    prop = schema["properties"].get(name)
    if prop is None:
        for pattern, sub in schema.get("patternProperties", {}).items():
            if re.search(pattern, name):
                prop = sub
                break
    if isinstance(prop, Mapping) and isinstance(prop.get("x-pve-property-string"), Mapping):
        return dict(prop["x-pve-property-string"])
    return None


def encode_structured(op: Operation, args: Mapping[str, Any]) -> JsonDict:
    """Objects given for property-string parameters become PVE property strings."""
    from pvemcp.dialect import propstring

    out: JsonDict = {}
    for name, value in args.items():
        if isinstance(value, Mapping):
            sub = property_string_schema(op, name)
            if sub is None:
                raise ToolError(f"{name}: an object was given but {name} is not a property string", field=name)
            try:
                out[name] = propstring.format_property_string(dict(value), sub)
            except (propstring.PropertyStringError, ValueError) as exc:
                raise ToolError(f"{name}: {exc}", field=name) from None
        elif isinstance(value, int | float) and not isinstance(value, bool) and property_string_schema(op, name):
            out[name] = str(value)  # the default key alone: memory 4096 -> "4096" (current=4096)
        else:
            out[name] = value
    return out


def path_arguments(op: Operation, args: Mapping[str, Any]) -> JsonDict:
    """The operation's path parameters taken from the arguments; the first missing one is an error."""
    missing = [k for k in op.path_params if k not in args]
    if missing:
        raise ToolError(f"{missing[0]} is required", field=missing[0])
    return {k: args[k] for k in op.path_params}


def check_against_operation(op: Operation, args: Mapping[str, Any]) -> None:
    """Validate the final request arguments (path + query/body) against the operation's schema.

    Named PVE formats are checked with PVE's own validator messages too, so a value the schema's
    regex cannot express (or a schema generated without one) is still caught before sending.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(op.input_schema)
    errors = sorted(validator.iter_errors(dict(args)), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        field = _field_path(error)
        raise ToolError(f"{_field_path(error)}: {_rule(error)} ({op.key})", field=field)
    from pvemcp.dialect import formats

    for name, value in args.items():
        prop = op.input_schema["properties"].get(name)
        fmt = prop.get("x-pve-format") if isinstance(prop, Mapping) else None
        if isinstance(fmt, str) and isinstance(value, str):
            problem = formats.check_format(fmt, value)
            if problem:
                shown = problem.strip()
                shown = shown if len(shown) <= 200 else shown[:199] + "…"
                raise ToolError(f"{name}: invalid format - {shown} ({op.key})", field=name)


_SHOWN_CHARS = 40


def _shown(value: Any) -> str:
    """A value as an error may quote it: short, so a huge input never floods the model's context."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _field_of(error: jsonschema.ValidationError) -> str:
    """The offending key, read from the instance and schema, not parsed out of the message."""
    instance, schema = error.instance, error.schema
    if error.validator == "required" and isinstance(instance, Mapping):
        missing = [k for k in error.validator_value if k not in instance]
        if missing:
            return str(missing[0])
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extra = [k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)]
        if extra:
            return _name(extra[0])
    return "arguments"


def _name(key: object) -> str:
    """A key as an error names it: whole, or its first characters when it is absurdly long."""
    text = str(key)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _rule(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return "is not a parameter of this operation"
    if error.validator == "required":
        return "is required"
    if error.validator == "pattern":
        return f"does not match the required format ({error.schema.get('x-pve-format') or 'pattern'})"
    if error.validator in ("minimum", "maximum", "maxLength", "minLength", "maxItems", "minItems", "enum", "type"):
        return f"must satisfy {error.validator} {_shown(error.validator_value)} (got {_shown(error.instance)})"
    return f"is invalid ({error.validator} {_shown(error.validator_value)})"


def validation_error_text(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(field, sentence) for a tool-schema validation error: names the field and the rule."""
    field = _field_path(error)
    return field, f"{field}: {_rule(error)}"


def _field_path(error: jsonschema.ValidationError) -> str:
    """Where the error is: a nested path like ``set.net0``, or the top-level key at fault."""
    if error.path:
        return ".".join(_name(p) for p in error.path)
    return _field_of(error)


def non_finite_path(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds NaN or an infinity, as ``a.b[2]`` (``""`` for the value itself), or None.

    JSON has no such numbers, yet the MCP SDK's parser accepts ``NaN`` and ``Infinity`` and a schema's
    ``minimum`` lets NaN through (every comparison with it is false); nothing pvemcp sends or digests
    can carry one, so a call holding one is refused before it is planned.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = non_finite_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def task_node(upid: str) -> str:
    """The node a task runs on, from its UPID; a malformed UPID is the caller's error."""
    try:
        return parse_upid(upid).node
    except ValueError:
        raise ToolError(
            "upid: not a valid Proxmox UPID (UPID:node:pid:pstart:starttime:type:id:user:)", field="upid"
        ) from None
