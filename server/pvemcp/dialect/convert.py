"""Convert PVE's JSON-schema dialect (apidoc.json) into JSON Schema 2020-12.

PVE's dialect differs from JSON Schema in ways a validator cannot read: ``optional: 1`` instead
of ``required``, numbers written as strings (``"minimum": "0"``), booleans that are ``0``/``1``,
``format`` that is either a named validator or a dict describing a *property string*, indexed
parameters (``net[n]``), ``requires`` between parameters, and patterns PVE anchors implicitly.
This module turns one parameter or return definition into a schema a standard validator checks,
keeping what has no JSON Schema equivalent under ``x-pve-*`` keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pvemcp.dialect.types import JsonDict

# Named formats that the formats module may turn into a regex; imported lazily so that the
# converter stays usable (with fewer constraints) while formats are being extended.
FormatPattern = Callable[[str], str | None]

BOOLEAN_SCHEMA: JsonDict = {"type": ["boolean", "integer"], "enum": [0, 1, False, True]}

_SCALAR_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}
_TRIVIAL_TYPETEXT = re.compile(r"^<(string|integer|number|boolean|array)>( \(.*\))?$")
_INDEXED = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9_-]*)\[n\]$")
# Keys of PVE's dialect that carry no meaning for a validator or a reader of the schema.
_DROPPED = {"typetext", "verbose_description", "format_description", "renderer", "links", "optional"}


def indexed_pattern(name: str) -> str | None:
    """Return the patternProperties regex for an indexed PVE parameter such as ``net[n]``."""
    match = _INDEXED.match(name)
    if match is None:
        return None
    return f"^{re.escape(match['base'])}(0|[1-9][0-9]*)$"


def _number(value: Any, integer: bool) -> int | float:
    """PVE writes numeric schema keywords as strings; JSON Schema needs numbers."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value) if integer and float(value).is_integer() else value
    number = float(str(value))
    return int(number) if integer and number.is_integer() else number


def _demote_invalid_default(out: JsonDict) -> None:
    """PVE sometimes documents a default its own schema rejects (``default: "all"`` outside the
    enum); OpenAPI requires defaults to validate, so such a default is kept only as prose."""
    if "default" not in out:
        return
    import jsonschema

    rest = {k: v for k, v in out.items() if k != "default"}
    if not jsonschema.Draft202012Validator(rest).is_valid(out["default"]):
        out["x-pve-default"] = out.pop("default")


def _set_default(out: JsonDict, default: Any, integer: bool) -> None:
    """Numeric defaults become numbers; prose defaults ("0; for erasure coded pools: 1") stay prose."""
    try:
        out["default"] = _number(default, integer=integer)
    except ValueError:
        out["x-pve-default"] = default


def anchor(pattern: str) -> str:
    """PVE applies ``pattern`` as ``m/^$pattern$/``; JSON Schema searches. Translation and anchoring
    (with PVE's exact semantics for a top-level ``|``) live with the other PVE format knowledge."""
    from pvemcp.dialect.formats import pve_pattern_to_ecma

    return pve_pattern_to_ecma(pattern)


class SchemaConverter:
    """Stateless conversion with pluggable knowledge of named formats and property strings."""

    def __init__(
        self,
        format_pattern: FormatPattern | None = None,
        property_string_schema: Callable[[Mapping[str, Any]], JsonDict] | None = None,
        typetext_schema: Callable[[str], JsonDict | None] | None = None,
    ) -> None:
        self._format_pattern = format_pattern
        self._property_string_schema = property_string_schema
        self._typetext_schema = typetext_schema

    # ---------------------------------------------------------------- parameters and returns
    def convert(self, pve: Mapping[str, Any]) -> JsonDict:
        """Convert one PVE schema node (a parameter, a return value, or a nested item)."""
        if "oneOf" in pve:
            return self._convert_alternatives(pve)
        pve_type = pve.get("type")
        out: JsonDict = {}
        if isinstance(pve.get("title"), str):
            out["title"] = pve["title"]
        if isinstance(pve.get("description"), str) and pve["description"]:
            out["description"] = pve["description"].strip()
        if pve_type == "boolean":
            out.update(BOOLEAN_SCHEMA)
            out["x-pve-type"] = "boolean"
            if "default" in pve:
                _set_default(out, pve["default"], integer=True)
            return out
        if isinstance(pve_type, str) and pve_type in _SCALAR_TYPES:
            out["type"] = pve_type
        elif pve_type is not None:
            out["x-pve-type"] = pve_type  # e.g. "any": no constraint a validator can apply
        integer = pve_type == "integer"
        for key in ("minimum", "maximum"):
            if key in pve:
                out[key] = _number(pve[key], integer=pve_type != "number")
        for key in ("minLength", "maxLength"):
            if key in pve:
                out[key] = int(_number(pve[key], integer=True))
        if isinstance(pve.get("enum"), list):
            out["enum"] = list(pve["enum"])
        if "default" in pve:
            if pve_type in ("integer", "number"):
                _set_default(out, pve["default"], integer=integer)
            else:
                out["default"] = pve["default"]
        self._apply_format_and_pattern(pve, out)
        if pve_type == "array" and isinstance(pve.get("items"), Mapping):
            out["items"] = self.convert(pve["items"])
        if pve_type == "object" or "properties" in pve:
            out.update(self.convert_object(pve))
        if isinstance(pve.get("typetext"), str) and not _TRIVIAL_TYPETEXT.match(pve["typetext"]):
            out["x-pve-typetext"] = pve["typetext"]
        for key in ("type-property", "instance-types"):
            if key in pve:
                out[f"x-pve-{key}"] = pve[key]
        _demote_invalid_default(out)
        return out

    def convert_object(self, pve: Mapping[str, Any], *, closed_by_default: bool = False) -> JsonDict:
        """Convert an object node: properties, required, indexed keys, ``requires``."""
        out: JsonDict = {"type": "object"}
        properties: JsonDict = {}
        pattern_properties: JsonDict = {}
        required: list[str] = []
        dependent: dict[str, list[str]] = {}
        for name in sorted(pve.get("properties") or {}):
            spec = pve["properties"][name]
            converted = self.convert(spec)
            pattern = indexed_pattern(name)
            if pattern is not None:
                converted["x-pve-indexed"] = name
                pattern_properties[pattern] = converted
                continue
            properties[name] = converted
            if not spec.get("optional"):
                required.append(name)
            if isinstance(spec.get("requires"), str):
                dependent[name] = [spec["requires"]]
        if properties or "properties" in pve:
            out["properties"] = properties
        if pattern_properties:
            out["patternProperties"] = pattern_properties
        if required:
            out["required"] = required
        if dependent:
            out["dependentRequired"] = dependent
        additional = pve.get("additionalProperties")
        if isinstance(additional, Mapping):
            out["additionalProperties"] = self.convert(additional)
        elif additional is not None:
            out["additionalProperties"] = bool(additional)
        elif closed_by_default:
            out["additionalProperties"] = False
        return out

    # ---------------------------------------------------------------- helpers
    def _convert_alternatives(self, pve: Mapping[str, Any]) -> JsonDict:
        """PVE's ``oneOf`` picks an alternative by ``type-property``; several may match, so anyOf."""
        out: JsonDict = {"anyOf": [self.convert(alt) for alt in pve["oneOf"]]}
        if isinstance(pve.get("description"), str):
            out["description"] = pve["description"].strip()
        if "type-property" in pve:
            out["x-pve-type-property"] = pve["type-property"]
        return out

    def _apply_format_and_pattern(self, pve: Mapping[str, Any], out: JsonDict) -> None:
        fmt = pve.get("format")
        patterns: list[str] = []
        if isinstance(pve.get("pattern"), str):
            patterns.append(anchor(pve["pattern"]))
        if isinstance(fmt, Mapping):
            out["type"] = "string"
            if self._property_string_schema is not None:
                out["x-pve-property-string"] = self._property_string_schema(fmt)
            else:
                out["x-pve-property-string"] = {"type": "object"}
        elif isinstance(fmt, str):
            out["x-pve-format"] = fmt
            regex = self._format_pattern(fmt) if self._format_pattern else None
            if regex and out.get("type") == "string":
                patterns.append(regex)
            typetext = pve.get("typetext")
            if isinstance(typetext, str) and self._typetext_schema is not None:
                derived = self._typetext_schema(typetext)
                if derived is not None:
                    out["x-pve-property-string"] = derived
        if len(patterns) == 1:
            out["pattern"] = patterns[0]
        elif patterns:
            out["allOf"] = [{"pattern": p} for p in patterns]
