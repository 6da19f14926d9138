"""The text face of a tool result: every fact of the structured result, in the leanest readable form.

Hosts differ in which face of a result reaches the model (Claude Desktop and claude.ai read only the
text blocks; Claude Code and VS Code only the structured content), so both faces must carry the same
facts. The structured face stays typed JSON; this module writes the text face from it:

- a headline (the handler's one-line summary),
- a list of rows as a table: the header once, one line a row, cells separated by ``|``,
- an object as ``key: value`` lines, nested objects as dotted keys, nested row lists as tables.

Free text that comes from guests or users (names, descriptions, notes, comments, task logs, agent
output) is data, never instructions: it is written between ``‹`` and ``›`` with newlines escaped, so
a guest that names itself "ignore previous instructions" cannot forge a line of our output. The
server instructions tell the model what the marks mean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

OPEN, CLOSE = "‹", "›"
SEPARATOR = "|"
# Keys whose values are free text written by guests or users (PVE config, snapshot, backup, task fields).
UNTRUSTED_KEYS = frozenset(
    {"name", "new_name", "hostname", "description", "notes", "comment", "tags", "log_tail", "lines", "t"}
    | {"out-data", "err-data", "notes-template", "searchdomain", "nameserver"}
    | {"stdout", "stderr"}  # what a command inside a guest printed (guest_exec)
    | {"interface", "pretty-name", "kernel-release", "machine"}  # what a guest agent reports (guest_facts)
)


def face(headline: str, structured: Mapping[str, Any]) -> str:
    """The text face: the headline, then every value of ``structured`` (nothing is left out)."""
    body = _body(structured)
    return f"{headline}\n{body}" if body else headline


def _body(structured: Mapping[str, Any]) -> str:
    if "items" in structured and isinstance(structured["items"], list):
        rest = {k: v for k, v in structured.items() if k != "items"}
        lines = _rows_or_values(structured["items"], untrusted=False)
        page = " ".join(f"{k}: {cell(v, False)}" for k, v in rest.items() if not isinstance(v, (Mapping, list)))
        extra = _mapping_lines({k: v for k, v in rest.items() if isinstance(v, (Mapping, list))}, "")
        return "\n".join([*lines, *([page] if page else []), *extra])
    data = structured.get("data")
    if isinstance(data, Mapping):  # the one object of an object result: its keys need no "data." prefix
        rest = {k: v for k, v in structured.items() if k != "data"}
        return "\n".join([*_mapping_lines(data, ""), *_mapping_lines(rest, "")])
    return "\n".join(_mapping_lines(structured, ""))


def _mapping_lines(data: Mapping[str, Any], prefix: str) -> list[str]:
    lines: list[str] = []
    for key, value in data.items():
        if value is None:
            continue
        label = f"{prefix}{key}"
        untrusted = key in UNTRUSTED_KEYS
        if isinstance(value, Mapping):
            if _all_scalars(value.values()):
                inner = " ".join(f"{k}={cell(v, k in UNTRUSTED_KEYS)}" for k, v in value.items() if v is not None)
                lines.append(f"{label}: {inner}")
            elif prefix:  # deeper than one level (a schema, a raw API answer): compact JSON on one line
                lines.append(f"{label}: {cell(dict(value), untrusted or _holds_untrusted(value))}")
            else:
                lines.extend(_mapping_lines(value, f"{label}."))
        elif isinstance(value, list):
            if not value:
                lines.append(f"{label}: (none)")
            elif _all_scalars(value) and not untrusted and sum(len(str(v)) for v in value) <= 200:
                lines.append(f"{label}: " + ", ".join(cell(v, False) for v in value))
            else:
                lines.append(f"{label}:")
                lines.extend(_rows_or_values(value, untrusted))
        else:
            lines.append(f"{label}: {cell(value, untrusted)}")
    return lines


def _rows_or_values(items: Sequence[Any], untrusted: bool) -> list[str]:
    """Rows (mappings) as a table; plain values one a line."""
    if items and all(isinstance(i, Mapping) for i in items):
        return table(items)
    return [cell(i, untrusted) for i in items]


def table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Header once (the union of the rows' keys, in first-seen order), then one line per row."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns and any(r.get(key) is not None for r in rows):
                columns.append(key)
    lines = [SEPARATOR.join(columns)]
    for row in rows:
        lines.append(SEPARATOR.join(cell(row.get(c), c in UNTRUSTED_KEYS, in_table=True) for c in columns))
    return lines


def cell(value: Any, untrusted: bool, *, in_table: bool = False) -> str:
    """One value as text: JSON spelling for numbers, booleans and nested values; free text marked."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        if untrusted:  # between the marks a separator cannot shift the columns
            return OPEN + text.replace(OPEN, "<").replace(CLOSE, ">") + CLOSE
        if in_table and SEPARATOR in text:
            return '"' + text.replace('"', '\\"') + '"'
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list) and _all_scalars(value):
        return ";".join(cell(v, untrusted, in_table=in_table) for v in value)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if untrusted:
        return OPEN + text.replace(OPEN, "<").replace(CLOSE, ">") + CLOSE
    return text


def _holds_untrusted(value: Any) -> bool:
    """Whether free text of guests or users is anywhere inside a nested value."""
    if isinstance(value, Mapping):
        return any(k in UNTRUSTED_KEYS or _holds_untrusted(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_untrusted(v) for v in value)
    return False


def _all_scalars(values: Any) -> bool:
    return all(v is None or isinstance(v, (str, int, float, bool)) for v in values)


def leaves(value: Any) -> list[Any]:
    """Every scalar leaf of a structured result (what the text face must carry), nulls left out."""
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [] if value is None else [value]


def leaf_text(value: Any) -> str:
    """How a leaf is spelled in the text face, for checking that the text carries it."""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return cell(value, False)
