"""Parameter validation exactly as PVE reports it (``PVE::JSONSchema::validate``), over ``op.input_schema``.

Why not a JSON Schema library: PVE's answers are part of the behaviour clients see — which check runs
first (format before pattern before length before range before enum; missing before unknown), the texts
(``type check ('integer') failed - got 'abc'``, ``invalid format - value does not look like a valid VM ID\\n``),
form-encoded booleans (only ``1``/``0``; JSON ``true``/``false`` too) and numbers given as strings. A
generic validator would produce different messages, so this module walks the schema the way
``check_object``/``check_prop`` do and also returns the parameters converted to Python types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from pvemcp.sim.errors import param_error

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")

FormatChecker = Callable[[str, str, str], str | None]
PropStringChecker = Callable[[str, Mapping[str, Any], str], str | None]


def _load_format_checker() -> FormatChecker:
    """``pvemcp.dialect.formats.check_format`` when present, else the simulator's small fallback."""
    try:
        from pvemcp.dialect import formats
    except ImportError:  # pragma: no cover - the formats module ships with the package
        return lambda name, value, path: _fallback_check_format(name, value)

    def check(name: str, value: str, path: str) -> str | None:
        return formats.check_format(name, value, path=path)

    return check


def _load_propstring_checker() -> PropStringChecker | None:
    """Validation of dict-format property strings (``x-pve-property-string``) via the shared codec."""
    try:
        from pvemcp.dialect import propstring
    except ImportError:  # pragma: no cover
        return None

    def check(text: str, schema: Mapping[str, Any], path: str) -> str | None:
        try:
            propstring.parse(text, schema)
        except propstring.PropertyStringError as err:
            return err.pve_message(path)
        except Exception:  # a codec limitation must not turn into a rejection PVE would not make
            return None
        return None

    return check


# PVE's validator messages for the formats the simulator's own endpoints rely on (fallback only).
_FALLBACK_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "pve-vmid": (re.compile(r"^[1-9][0-9]{2,8}$"), "value does not look like a valid VM ID\n"),
    "pve-node": (
        re.compile(r"^(?i:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)$"),
        "value does not look like a valid node name\n",
    ),
    "pve-configid": (re.compile(r"^(?i:[a-z][a-z0-9_-]+)$"), "invalid configuration ID '{v}'\n"),
    "pve-storage-id": (
        re.compile(r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$"),
        "storage ID '{v}' contains illegal characters\n",
    ),
    "pve-poolid": (re.compile(r"^[A-Za-z0-9_\-]+$"), "pool name '{v}' contains illegal characters\n"),
    "pve-userid": (
        re.compile(r"^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$"),
        "value '{v}' does not look like a valid user name\n",
    ),
    "pve-realm": (re.compile(r"^[A-Za-z][A-Za-z0-9.\-_]+$"), "invalid realm ID '{v}'\n"),
}


def _fallback_check_format(name: str, value: str) -> str | None:
    if name.endswith("-list"):
        base = name[: -len("-list")]
        if base in _FALLBACK_FORMATS:
            for item in re.split(r"[,;\s\0]+", value):
                if item:
                    msg = _fallback_check_format(base, item)
                    if msg:
                        return msg
        return None
    entry = _FALLBACK_FORMATS.get(name)
    if entry is None:
        return None
    regex, message = entry
    return None if regex.match(value) else message.replace("{v}", value)


_check_format = _load_format_checker()
_check_propstring = _load_propstring_checker()


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _pve_type(schema: Mapping[str, Any]) -> str | None:
    """The PVE type of a property: ``x-pve-type`` wins (booleans are ``["boolean","integer"]`` in JSON)."""
    xt = schema.get("x-pve-type")
    if isinstance(xt, str):
        return xt
    t = schema.get("type")
    if isinstance(t, list):
        return next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) else None


def _scalar_text(value: Any) -> str:
    """How Perl would see a scalar: JSON ``true``/``false`` are 1/0, numbers in their shortest form."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_value(name: str, value: Any, schema: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(error text or None, converted value) for one present parameter (``check_prop`` order)."""
    ptype = _pve_type(schema)
    if isinstance(value, dict):
        return (f"type check ('{ptype}') failed - got HASH", value) if ptype not in (None, "object") else (None, value)
    if isinstance(value, list):
        if ptype == "array":
            return None, value
        return f"type check ('{ptype}') failed - got ARRAY", value
    if value is None:
        return None, None
    text = _scalar_text(value)
    converted: Any = text
    if ptype == "boolean":
        if text not in ("1", "0"):
            return f"type check ('boolean') failed - got '{text}'", value
        converted = int(text)
    elif ptype == "integer":
        if not _INT_RE.match(text):
            return f"type check ('integer') failed - got '{text}'", value
        converted = int(text)
    elif ptype == "number":
        if not _NUM_RE.match(text):
            return f"type check ('number') failed - got '{text}'", value
        num = float(text)
        converted = int(num) if num.is_integer() and "." not in text and "e" not in text.lower() else num
    fmt = schema.get("x-pve-format")
    if isinstance(fmt, str):
        msg = _check_format(fmt, text, name)
        if msg:
            return f"invalid format - {msg}", value
    sub = schema.get("x-pve-property-string")
    if isinstance(sub, Mapping) and _check_propstring is not None and not isinstance(fmt, str):
        msg = _check_propstring(text, schema, name)
        if msg:
            return f"invalid format - {msg}", value
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not isinstance(fmt, str):
        rx = _compile(pattern)
        if rx is not None and not rx.search(text):
            return "value does not match the regex pattern", value
    max_len = schema.get("maxLength")
    if isinstance(max_len, int) and len(text) > max_len:
        return f"value may only be {max_len} characters long", value
    min_len = schema.get("minLength")
    if isinstance(min_len, int) and len(text) < min_len:
        return f"value must be at least {min_len} characters long", value
    if _NUM_RE.match(text):
        num_value = float(text)
        maximum = schema.get("maximum")
        if isinstance(maximum, int | float) and num_value > maximum:
            return f"value must have a maximum value of {_num(maximum)}", value
        minimum = schema.get("minimum")
        if isinstance(minimum, int | float) and num_value < minimum:
            return f"value must have a minimum value of {_num(minimum)}", value
    enum = schema.get("enum")
    if isinstance(enum, list) and ptype != "boolean":
        values = [_scalar_text(e) for e in enum]
        if text not in values:
            return f"value '{text}' does not have a value in the enumeration '{', '.join(values)}'", value
    return None, converted


def _num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def _schema_for(name: str, schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    props: Mapping[str, Any] = schema.get("properties", {})
    if name in props:
        sub: Mapping[str, Any] = props[name]
        return sub
    for pattern, sub in schema.get("patternProperties", {}).items():
        rx = _compile(pattern)
        if rx is not None and rx.search(name):
            found: Mapping[str, Any] = sub
            return found
    return None


def validate_params(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate request parameters; returns them typed, or raises PVE's 400 with per-parameter errors.

    Known properties are checked first (missing, then the value checks), then unknown parameters —
    the order of PVE's ``check_object``; when one parameter collects several errors PVE joins them
    with a literal backslash-n, which is reproduced.
    """
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}

    def add(name: str, msg: str) -> None:
        errors[name] = f"{errors[name]}\\n{msg}" if name in errors else msg

    required = set(schema.get("required", []))
    props: Mapping[str, Any] = schema.get("properties", {})
    for name, sub in props.items():
        if name not in params or params[name] is None:
            if name in required:
                add(name, "property is missing and it is not optional")
            continue
        err, conv = _check_value(name, params[name], sub)
        if err:
            add(name, err)
        else:
            out[name] = conv
    for name, value in params.items():
        if name in props:
            continue
        sub = _schema_for(name, schema)
        if sub is None:
            if schema.get("additionalProperties", True) is False:
                add(name, "property is not defined in schema and the schema does not allow additional properties")
            else:
                out[name] = value
            continue
        err, conv = _check_value(name, value, sub)
        if err:
            add(name, err)
        else:
            out[name] = conv
    # dependentRequired: PVE's "requires" ("missing property - 'a' requires this property")
    for name, deps in schema.get("dependentRequired", {}).items():
        if name in params:
            for dep in deps:
                if dep not in params:
                    add(dep, f"missing property - '{name}' requires this property")
    if errors:
        raise param_error(errors)
    return out
