"""PVE property strings (``key=value,key=value``): schema conversion, parsing and canonical printing.

Many PVE options are one string holding several settings, e.g. a qemu NIC
``virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1``. apidoc.json describes them with a ``format``
dict (or, for some named formats, only a ``typetext``). This module turns those descriptions into
JSON Schema sub-schemas, so a tool can accept the settings as a structured object, and converts
between that object and the string PVE stores, following ``PVE::JSONSchema::parse_property_string``
and ``print_property_string`` (pve-common):

* the *default key* may be written without ``key=`` (``local-lvm:vm-100-disk-0,size=32G`` sets
  ``file``); printing puts it first, bare;
* *aliases* store their value under another key; a *key alias* also stores the alias name itself
  (``virtio=MAC`` means ``model=virtio,macaddr=MAC``) and printing folds the pair back;
* booleans are read from ``1/0/on/off/yes/no/true/false`` and printed as ``1``/``0``;
* after the default key come the required keys, then the others, each group sorted;
* there is no quoting: a value with ``,`` cannot be written (PVE refuses too), a value with ``=``
  only as ``key=value``.

Checks run in PVE's order (type, format, pattern, length, range, enum) with PVE's messages, so a
rejected value reads as PVE would report it. ``parse`` is strict where PVE silently lets a later
alias overwrite an earlier key: such input is ambiguous and is refused as a duplicate.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from pvemcp.dialect.formats import (
    PROPERTY_STRING_TYPETEXTS,
    check_format,
    format_pattern,
    perl_number,
    perl_split,
    perl_true,
    pve_pattern_to_ecma,
)

__all__ = [
    "PropertyStringError",
    "check_named",
    "format",
    "format_property_string",
    "format_size",
    "named_format_schema",
    "parse",
    "parse_boolean",
    "schema_from_pve_format",
    "schema_from_typetext",
]

from pvemcp.dialect.types import JsonDict

_SCALARS: Final = ("string", "integer", "number", "boolean")
_INTEGER: Final = re.compile(r"^[+-]?\d+$")  # PVE::JSONSchema::is_integer
_NUMBER: Final = re.compile(r"^[+-]?(?:\d+\.\d+|\d+\.|\.\d+|\d+)(?:[eE][+-]?\d+)?$")  # is_number
_KEY_VALUE: Final = re.compile(r"^([^=]+)=(.+)$")  # parse_property_string's split of one part
_BLANK: Final = re.compile(r"^\s*$")
_TRUE: Final = re.compile(r"^(?:1|on|yes|true)$", re.IGNORECASE)
_FALSE: Final = re.compile(r"^(?:0|off|no|false)$", re.IGNORECASE)
_ABBREVIATIONS: Final = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "incl.", "resp.")


class PropertyStringError(ValueError):
    """A property string (or the values for one) that PVE would reject.

    ``key`` is the sub-key at fault (None when the string as a whole is malformed), ``message`` PVE's
    wording without the trailing newline; ``str()`` reads ``<key>: <message>`` like PVE's error paths.
    """

    def __init__(self, key: str | None, message: str, *, structural: bool = False) -> None:
        self.key = key
        self.detail = message  # exact per-key text; "invalid format - ..." keeps the validator's "\n"
        self.message = message.rstrip("\n")
        # structural: raised while splitting the string (PVE dies there) rather than by the
        # per-key checks PVE collects into an errors hash; the two print differently.
        self.structural = structural
        super().__init__(f"{key}: {self.message}" if key else self.message)

    def pve_message(self, path: str = "") -> str:
        """What PVE prints after ``invalid format - `` for this error (``path``: the parameter name)."""
        if self.structural:
            return self.detail if self.detail.endswith("\n") else self.detail + "\n"
        key = f"{path}.{self.key}" if path and self.key else (self.key or path or "_root")
        return f"format error\n{key}: {self.detail}\n"


# --------------------------------------------------------------------------- small PVE helpers
def parse_boolean(text: str) -> bool | None:
    """PVE's ``parse_boolean``: the spellings PVE accepts for booleans, case-insensitively."""
    if _TRUE.match(text):
        return True
    if _FALSE.match(text):
        return False
    return None


def pve_true(value: object) -> bool:
    """A boolean parameter as PVE's code sees it: text through :func:`parse_boolean` (``no``/``off``/
    ``false``/``0`` are false, any case), anything else by Perl truthiness (``undef``, ``0``, ``""`` false)."""
    if isinstance(value, str):
        parsed = parse_boolean(value.strip())
        if parsed is not None:
            return parsed
    return perl_true(value.strip() if isinstance(value, str) else value)


def format_size(size: int) -> str:
    """PVE's ``format_size``: bytes in the largest exact unit (``32G``), as ``disk-size`` prints."""
    amount = int(size)
    for unit in ("", "K", "M", "G"):
        if amount % 1024:  # PVE's int($size/1024)*1024 != $size
            return f"{amount}{unit}"
        amount //= 1024
    return f"{amount}T"


def split_property_string(value: str) -> tuple[str | None, dict[str, str]]:
    """Split ``volid,key=value,…`` without a schema: the leading bare item (a volume, say) and the
    ``key=value`` pairs, as text. For when the schema is not at hand; :func:`parse` checks and types."""
    head: str | None = None
    opts: dict[str, str] = {}
    for i, part in enumerate(value.split(",")):
        if "=" in part:
            k, v = part.split("=", 1)
            opts[k] = v
        elif i == 0:
            head = part
    return head, opts


def _number(value: object, integer: bool) -> int | float:
    """PVE writes numbers in schemas as strings (``"minimum": "0"``); JSON Schema needs numbers."""
    number = float(value) if isinstance(value, int | float) else float(str(value))
    if integer or number.is_integer():
        return int(number)
    return number


def _first_sentence(text: str) -> str:
    """A description condensed to its first sentence (tool schemas should stay small)."""
    flat = " ".join(text.split())
    for match in re.finditer(r"[.!?](?=\s+[A-Z0-9'\"(\[`])", flat):
        head = flat[: match.end()]
        if not head.endswith(_ABBREVIATIONS):
            return head
    return flat


def _sorted_dict(data: Mapping[str, Any]) -> JsonDict:
    return {key: data[key] for key in sorted(data)}


# --------------------------------------------------------------------------- schema from apidoc
def _typed_default(value: object, pve_type: str) -> Any:
    """A PVE default in the property's JSON type; ValueError for prose defaults."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = perl_number(float(value))
    else:
        raise ValueError(value)
    if pve_type == "boolean":
        flag = parse_boolean(text)
        if flag is None:
            raise ValueError(value)
        return flag
    if pve_type == "integer":
        if not _INTEGER.match(text):
            raise ValueError(value)
        return int(text)
    if pve_type == "number":
        if not _NUMBER.match(text):
            raise ValueError(value)
        return _number(text, integer=False)
    return text


def _convert_key(entry: Mapping[str, Any]) -> JsonDict:
    """One real (non-alias) key of a PVE format dict as a JSON Schema property."""
    pve_type = str(entry["type"]) if entry.get("type") in _SCALARS else "string"
    out: JsonDict = {"type": pve_type}
    if isinstance(entry.get("description"), str) and entry["description"].strip():
        out["description"] = _first_sentence(entry["description"])
    if perl_true(entry.get("default_key")):
        out["x-pve-default-key"] = True
    if isinstance(entry.get("enum"), list):
        enum = list(entry["enum"])
        if pve_type in ("integer", "number"):
            with contextlib.suppress(ValueError):  # a non-numeric choice: keep PVE's list as written
                enum = [_number(v, integer=pve_type == "integer") for v in enum]
        out["enum"] = enum
    if isinstance(entry.get("pattern"), str):
        out["pattern"] = pve_pattern_to_ecma(entry["pattern"])
    for key in ("maxLength", "minLength"):
        if key in entry:
            out[key] = int(_number(entry[key], integer=True))
    for key in ("minimum", "maximum"):
        if key in entry:
            out[key] = _number(entry[key], integer=pve_type == "integer")
    if "default" in entry:
        try:
            out["default"] = _typed_default(entry["default"], pve_type)
        except ValueError:
            out["x-pve-default"] = entry["default"]
    fmt = entry.get("format")
    if isinstance(fmt, str):
        out["x-pve-format"] = fmt
        regex = format_pattern(fmt) if pve_type == "string" else None
        if regex and "pattern" in out:
            out["allOf"] = [{"pattern": regex}]
        elif regex:
            out["pattern"] = regex
    elif isinstance(fmt, Mapping):
        out["x-pve-property-string"] = schema_from_pve_format(fmt)
    # PVE's 'min'/'max' (used by /cluster/options next-id) are not validated by PVE and are dropped.
    return _sorted_dict(out)


def schema_from_pve_format(fmt: Mapping[str, Any]) -> JsonDict:
    """Convert a PVE ``format`` dict into a JSON Schema 2020-12 object schema.

    Real keys become typed properties (named formats under ``x-pve-format``, the default key marked
    ``x-pve-default-key``); alias entries become ``{"x-pve-alias": target}`` (plus
    ``x-pve-key-alias``) so the codec can read them; ``required`` lists the non-optional real keys.
    """
    properties: JsonDict = {}
    required: list[str] = []
    for key in sorted(fmt):
        entry = fmt[key]
        if not isinstance(entry, Mapping):
            continue
        if isinstance(entry.get("alias"), str):
            alias: JsonDict = {"x-pve-alias": entry["alias"]}
            if isinstance(entry.get("keyAlias"), str):
                alias["x-pve-key-alias"] = entry["keyAlias"]
            properties[key] = alias
            continue
        properties[key] = _convert_key(entry)
        if not perl_true(entry.get("optional")):
            required.append(key)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


# --------------------------------------------------------------------------- schema from typetext
def _close_of(text: str, start: int) -> int | None:
    """Index of the ``]`` closing the ``[`` at ``start``; ``<...>`` spans are opaque (they hold
    type texts such as ``<HOSTPCIID[;HOSTPCIID2...]>``). None if unbalanced."""
    depth = 0
    angle = False
    for index in range(start, len(text)):
        ch = text[index]
        if angle:
            angle = ch != ">"
        elif ch == "<":
            angle = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return index
    return None


def _typetext_items(typetext: str) -> list[str] | None:
    """Split a typetext at the top-level spaces PVE's ``generate_typetext`` puts between items."""
    items: list[str] = []
    depth = 0
    angle = False
    current: list[str] = []
    for ch in typetext:
        if angle:
            angle = ch != ">"
        elif ch == "<":
            angle = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                return None
        elif ch == " " and depth == 0:
            if current:
                items.append("".join(current))
            current = []
            continue
        current.append(ch)
    if depth or angle:
        return None
    if current:
        items.append("".join(current))
    return items


def _schema_from_type_text(text: str) -> JsonDict:
    """The JSON type of one value from its type text (``<1|0>``, ``<integer>``, ``<a|b|c>``, ...)."""
    if text == "<1|0>":
        return {"type": "boolean"}
    if text in ("<integer>", "<N>", r"\d+"):
        return {"type": "integer"}
    if text == "<number>":
        return {"type": "number"}
    match = re.fullmatch(r"<([^<>]+)>", text)
    if match and "|" in match[1]:
        choices = match[1].split("|")
        # A format_description may contain '|' too: '<8-64|host>' (a range) or '<HOSTUSBDEVICE|spice>'
        # (a placeholder); only plain words make an enum.
        if all(
            re.fullmatch(r"[A-Za-z0-9_./+-]+", c) and not re.fullmatch(r"\d+-\d+|[A-Z][A-Z0-9_]+", c) for c in choices
        ):
            return {"enum": choices, "type": "string"}
    out: JsonDict = {"type": "string"}
    if text != "<string>":
        out["x-pve-typetext"] = text
    return out


def schema_from_typetext(typetext: str) -> JsonDict | None:
    """Derive the property-string schema from a typetext such as PVE prints it.

    Optional items are in ``[...]``, ``[key=]`` marks the default key, ``<1|0>`` is a boolean,
    ``<a|b|c>`` an enum, ``<integer>`` an integer; anything else stays a string. Returns None when the
    typetext does not describe a property string (``<string>``, ``<integer> (100 - 999999999)``).
    """
    items = _typetext_items(typetext.strip())
    if not items:
        return None
    properties: JsonDict = {}
    required: list[str] = []
    for item in items:
        optional = item.startswith("[") and _close_of(item, 0) == len(item) - 1
        body = item[1:-1] if optional else item
        body = body.removeprefix(",")
        if re.fullmatch(r"<[A-Za-z0-9_-]+>=<[A-Za-z0-9_-]+>", body):
            continue  # '<model>=<macaddr>': key aliases whose names the typetext does not list
        default = re.fullmatch(r"\[([A-Za-z0-9_-]+)=\](.+)", body)
        keyed = default or re.fullmatch(r"([A-Za-z0-9_-]+)=(.+)", body)
        if keyed is None or keyed[1] in properties:
            return None
        prop = _schema_from_type_text(keyed[2])
        if default:
            prop["x-pve-default-key"] = True
        properties[keyed[1]] = _sorted_dict(prop)
        if not optional:
            required.append(keyed[1])
    if not properties:
        return None
    return {
        "type": "object",
        "properties": _sorted_dict(properties),
        "required": sorted(required),
        "additionalProperties": False,
    }


@functools.cache
def _named_schema(name: str) -> JsonDict | None:
    typetext = PROPERTY_STRING_TYPETEXTS.get(name)
    return schema_from_typetext(typetext) if typetext is not None else None


def named_format_schema(name: str) -> JsonDict | None:
    """The schema of a named property-string format (``pve-qm-ipconfig``, ...), from its typetext."""
    schema = _named_schema(name)
    return copy.deepcopy(schema) if schema is not None else None


def check_named(name: str, text: str, *, path: str = "") -> str | None:
    """``formats.check_format`` for named property-string formats: PVE's message or None."""
    schema = _named_schema(name)
    if schema is None:
        return None
    try:
        values = parse(text, schema)
    except PropertyStringError as error:
        return error.pve_message(path)
    if (
        name == "prune-backups"
        and values.get("keep-all")
        and any(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values.values())
    ):
        return "keep-all cannot be set together with other options.\n"  # validate_prune_backups
    return None


# --------------------------------------------------------------------------- the codec
def _unwrap(schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], frozenset[str]]:
    """Properties and required keys of a sub-schema, or of a property schema carrying one."""
    inner = schema.get("x-pve-property-string", schema)
    properties = inner.get("properties") if isinstance(inner, Mapping) else None
    if not isinstance(properties, Mapping):
        raise TypeError("not a property-string schema (no 'properties')")
    return properties, frozenset(inner.get("required") or ())


def _default_key(properties: Mapping[str, Any]) -> str | None:
    for key, prop in properties.items():
        if prop.get("x-pve-default-key"):
            return str(key)
    return None


def _key_aliases(properties: Mapping[str, Any]) -> dict[str, tuple[str, frozenset[str]]]:
    """keyAlias -> (alias target, the alias names): ``model -> (macaddr, {virtio, e1000, ...})``."""
    found: dict[str, tuple[str, set[str]]] = {}
    for name, prop in properties.items():
        key_alias = prop.get("x-pve-key-alias")
        if isinstance(key_alias, str):
            found.setdefault(key_alias, (prop["x-pve-alias"], set()))[1].add(name)
    return {k: (target, frozenset(names)) for k, (target, names) in found.items()}


def _enum_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return perl_number(float(value))
    return str(value)


def _check_value(text: str, prop: Mapping[str, Any], check_formats: bool) -> str | None:
    """PVE's ``check_prop`` for one scalar: type, format, pattern, length, range, enum, in that order."""
    pve_type = prop.get("type", "string")
    if pve_type == "boolean" and text not in ("0", "1"):
        return f"type check ('boolean') failed - got '{text}'"
    if pve_type == "integer" and not _INTEGER.match(text):
        return f"type check ('integer') failed - got '{text}'"
    if pve_type == "number" and not _NUMBER.match(text):
        return f"type check ('number') failed - got '{text}'"
    fmt = prop.get("x-pve-format")
    if check_formats and isinstance(fmt, str):
        message = check_format(fmt, text)
        if message is not None:
            return f"invalid format - {message}"
    nested = prop.get("x-pve-property-string")
    if check_formats and isinstance(nested, Mapping):
        try:
            parse(text, nested)
        except PropertyStringError as error:
            return f"invalid format - {error.pve_message()}"
    pattern = prop.get("pattern")
    # A pattern derived from the named format was checked above, with PVE's message.
    derived = isinstance(fmt, str) and pattern == format_pattern(fmt)
    # re.search, as Perl's =~: PVE's anchoring (^...$ pasted around the text) leaves top-level
    # alternatives half-anchored, and the translated pattern keeps that.
    if isinstance(pattern, str) and not derived and not re.search(pattern, text):
        return "value does not match the regex pattern"
    if "maxLength" in prop and len(text) > prop["maxLength"]:
        return f"value may only be {prop['maxLength']} characters long"
    if "minLength" in prop and len(text) < prop["minLength"]:
        return f"value must be at least {prop['minLength']} characters long"
    if _NUMBER.match(text):
        if "maximum" in prop and float(text) > prop["maximum"]:
            return f"value must have a maximum value of {perl_number(prop['maximum'])}"
        if "minimum" in prop and float(text) < prop["minimum"]:
            return f"value must have a minimum value of {perl_number(prop['minimum'])}"
    if isinstance(prop.get("enum"), list):
        choices = [_enum_text(choice) for choice in prop["enum"]]
        if text not in choices:
            return f"value '{text}' does not have a value in the enumeration '{', '.join(choices)}'"
    return None


def _check_all(
    texts: Mapping[str, str], properties: Mapping[str, Any], required: frozenset[str], check_formats: bool
) -> None:
    """PVE's ``check_object`` over the collected values; raises on the first failure (sorted keys)."""
    for key in sorted(properties):
        prop = properties[key]
        if "x-pve-alias" in prop:
            continue
        text = texts.get(key)
        if text is None:
            if key in required:
                raise PropertyStringError(key, "property is missing and it is not optional")
            continue
        problem = _check_value(text, prop, check_formats)
        if problem is not None:
            raise PropertyStringError(key, problem)


def _typed(text: str, prop: Mapping[str, Any]) -> Any:
    pve_type = prop.get("type", "string")
    if pve_type == "boolean":
        return text == "1"
    if pve_type == "integer":
        return int(text)
    if pve_type == "number":
        return int(text) if _INTEGER.match(text) else float(text)
    return text


def _duplicate(key: str) -> PropertyStringError:
    return PropertyStringError(key, f"duplicate key in comma-separated list property: {key}", structural=True)


def parse(value: str, schema: Mapping[str, Any], *, check_formats: bool = True) -> dict[str, Any]:
    """Parse a property string into typed values (bool/int/float/str), checked as PVE checks it.

    ``schema`` is a sub-schema from ``schema_from_pve_format``/``schema_from_typetext`` (or a
    property schema carrying it under ``x-pve-property-string``). ``check_formats=False`` skips the
    named-format validators, e.g. to read configs written by older versions or by hand.
    Raises PropertyStringError naming the sub-key at fault.
    """
    if not isinstance(value, str):
        raise TypeError(f"a property string is a str, not {type(value).__name__}")
    properties, required = _unwrap(schema)
    default_key = _default_key(properties)
    texts: dict[str, str] = {}
    bare_seen = False
    for part in perl_split(",", value):
        if _BLANK.match(part):
            continue
        pair = _KEY_VALUE.match(part)
        if pair is not None:
            key, text = pair[1], pair[2]
            if key in texts:
                raise _duplicate(key)
            prop = properties.get(key)
            if prop is not None and "x-pve-alias" in prop:
                key_alias = prop.get("x-pve-key-alias")
                if isinstance(key_alias, str):
                    if key_alias in texts:
                        raise PropertyStringError(
                            key_alias, f"key alias '{key_alias}' is already defined", structural=True
                        )
                    texts[key_alias] = key
                key = prop["x-pve-alias"]
                if key in texts:  # stricter than PVE, which lets the later one win silently
                    raise _duplicate(key)
                prop = properties.get(key)
            if prop is None:
                raise PropertyStringError(key, f"invalid key in comma-separated list property: {key}", structural=True)
            if prop.get("type") == "boolean":
                flag = parse_boolean(text)
                text = text if flag is None else ("1" if flag else "0")
            texts[key] = text
        elif "=" not in part:
            if bare_seen and default_key is not None:
                raise _duplicate(default_key)
            if default_key is None:
                raise PropertyStringError(
                    None, "value without key, but schema does not define a default key", structural=True
                )
            if default_key in texts:
                raise _duplicate(default_key)
            texts[default_key] = part  # PVE applies no boolean parsing to a bare default value
            bare_seen = True
        else:
            raise PropertyStringError(
                part.split("=", 1)[0] or None, "missing key in comma-separated list property", structural=True
            )
    _check_all(texts, properties, required, check_formats)
    ordered = _print_order(texts, required, default_key)
    return {key: _typed(texts[key], properties[key]) for key in ordered}


def _print_order(present: Mapping[str, str], required: frozenset[str], default_key: str | None) -> list[str]:
    """print_property_string's order: the default key, then required keys, then the rest; sorted."""
    keys = sorted(present)
    first = [default_key] if default_key is not None and default_key in present else []
    needed = [k for k in keys if k in required and k not in first]
    rest = [k for k in keys if k not in required and k not in first]
    return [*first, *needed, *rest]


def _text_for(key: str, value: object, prop: Mapping[str, Any]) -> str:
    """The text PVE would store for a structured value (booleans as 1/0, byte counts as sizes)."""
    pve_type = prop.get("type", "string")

    def mismatch() -> PropertyStringError:
        return PropertyStringError(key, f"type check ('{pve_type}') failed - got {json.dumps(value, default=str)}")

    if pve_type == "boolean":
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return "1" if value else "0"
        if isinstance(value, str):
            flag = parse_boolean(value)
            if flag is None:
                raise PropertyStringError(key, f"type check ('boolean') failed - got '{value}'")
            return "1" if flag else "0"
        raise mismatch()
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise mismatch()
    if isinstance(value, str):
        return value
    if pve_type == "integer" and isinstance(value, float) and not value.is_integer():
        raise mismatch()
    if pve_type == "string" and prop.get("x-pve-format") == "disk-size" and float(value).is_integer():
        return format_size(int(value))
    return perl_number(float(value))


def _representable(key: str, text: str) -> str:
    """PVE does not quote: refuse what would not read back as the same value."""
    if "," in text:
        raise PropertyStringError(key, f"illegal value with commas for {key}", structural=True)
    if "\n" in text:
        raise PropertyStringError(key, f"illegal value with a newline for {key}", structural=True)
    if text == "":
        raise PropertyStringError(key, f"empty value for {key} cannot be written in a property string", structural=True)
    return text


def format_property_string(values: Mapping[str, Any], schema: Mapping[str, Any], *, check_formats: bool = True) -> str:
    """Print values as PVE's canonical property string (PVE's ``print_property_string`` order).

    ``values`` maps real keys (or alias names, ``{"virtio": "BC:24:..."}``) to structured values or
    to texts already in PVE form; None values are left out. Values are checked like ``parse`` checks
    them, so the result always parses back to the same values. Raises PropertyStringError.
    """
    properties, required = _unwrap(schema)
    texts: dict[str, str] = {}

    def put(key: str, text: str) -> None:
        if key in texts and texts[key] != text:
            raise _duplicate(key)
        texts[key] = text

    for key in sorted(values):
        value = values[key]
        if value is None:
            continue
        prop = properties.get(key)
        if prop is None:
            raise PropertyStringError(key, f"invalid key '{key}'", structural=True)
        if "x-pve-alias" in prop:
            target = prop["x-pve-alias"]
            if isinstance(prop.get("x-pve-key-alias"), str):
                put(prop["x-pve-key-alias"], key)
            put(target, _text_for(target, value, properties[target]))
        else:
            put(key, _text_for(key, value, prop))
    _check_all(texts, properties, required, check_formats)

    default_key = _default_key(properties)
    key_aliases = _key_aliases(properties)
    ordered = _print_order(texts, required, default_key)
    done: set[str] = set()
    parts: list[str] = []
    for key in ordered:
        if key in done:
            continue
        done.add(key)
        text = texts[key]
        target, names = key_aliases.get(key, ("", frozenset()))
        if target in texts and text in names and target not in done:
            parts.append(f"{_representable(key, text)}={_representable(target, texts[target])}")
            done.add(target)
        elif key == default_key and "=" not in text and text.strip():
            parts.append(_representable(key, text))
        else:
            parts.append(f"{key}={_representable(key, text)}")
    return ",".join(parts)


# PVE's name for it; ``format_property_string`` avoids shadowing the builtin where that matters.
format = format_property_string
