"""The rows an operator asks for first: guests, nodes and storages with usage in readable units.

Proxmox reports usage as raw bytes and CPU as a fraction of the node (``mem: 2668463181``,
``cpu: 0.2315``). A model asked "which node is least loaded" or "is any storage full" reads these
better as percentages and GiB; both faces of a result carry the same converted numbers, named by
their unit (``cpu_pct``, ``mem_gib``), so they stay typed and sortable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pvemcp.core.tools.base import JsonDict

GIB = 1024**3
STORAGE_ALERT_PCT = 80  # a storage at or above this fill level is named in the health summaries

GUEST_DEFAULT = ("vmid", "name", "type", "node", "status", "cpu_pct", "mem_gib", "maxmem_gib", "tags")


def gib(value: Any) -> float | int | None:
    """Bytes as GiB, two decimals below 10 GiB and one above (whole numbers stay integers)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    amount = number / GIB
    rounded = round(amount, 2 if amount < 10 else 1)
    return int(rounded) if rounded == int(rounded) else rounded


def pct(part: Any, whole: Any = 1) -> float | None:
    """``part/whole`` as a percentage with one decimal (CPU fractions: whole = 1)."""
    try:
        ratio = float(part) / float(whole)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(ratio * 100, 1)


def duration(seconds: Any) -> str | None:
    """Uptime as ``3d 4h`` / ``4h 12m`` / ``12m``."""
    try:
        total = int(seconds)
    except (TypeError, ValueError):
        return None
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def usage(entry: Mapping[str, Any]) -> JsonDict:
    """The derived usage fields of a guest or node entry of ``/cluster/resources`` or ``/nodes``."""
    out: JsonDict = {}
    running = entry.get("status") in (None, "running", "online")
    if running and entry.get("cpu") is not None:
        out["cpu_pct"] = pct(entry["cpu"])
    if running and entry.get("mem") is not None:
        out["mem_gib"] = gib(entry["mem"])
    if entry.get("maxmem") is not None:
        out["maxmem_gib"] = gib(entry["maxmem"])
    return out


def guest_row(entry: Mapping[str, Any], fields: Sequence[str] | None = None) -> JsonDict:
    """A guest as a row: the default columns, or vmid plus the chosen ``fields`` (raw or derived)."""
    source: JsonDict = {**entry, **usage(entry)}
    source["vmid"] = int(source.get("vmid") or 0)
    source.setdefault("type", "qemu")
    if entry.get("uptime"):
        source["uptime_h"] = duration(entry["uptime"])
    wanted = ["vmid", *(f for f in fields if f != "vmid")] if fields else list(GUEST_DEFAULT)
    row: JsonDict = {}
    for key in wanted:
        value = source.get(key)
        if value not in (None, ""):
            row[key] = value
    if not fields and entry.get("template"):
        row["template"] = True
    if not fields and entry.get("lock"):
        row["lock"] = entry["lock"]
    return row


def storage_row(entry: Mapping[str, Any]) -> JsonDict:
    """A storage with its fill level: ``/cluster/resources`` (disk/maxdisk) or a node's list (used/total)."""
    used = entry.get("disk", entry.get("used"))
    total = entry.get("maxdisk", entry.get("total"))
    row: JsonDict = {"storage": entry.get("storage")}
    for key in ("node", "type", "plugintype", "content", "shared", "status", "active", "enabled"):
        if entry.get(key) not in (None, ""):
            row["type" if key == "plugintype" else key] = entry[key]
    if total:
        row.update(used_gib=gib(used), total_gib=gib(total), used_pct=pct(used, total))
    return row


def over_threshold(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Storages at or above the alert level, as ``storage@node 91.2%``."""
    out = []
    for row in rows:
        used = row.get("used_pct")
        if isinstance(used, (int, float)) and used >= STORAGE_ALERT_PCT:
            where = f"@{row['node']}" if row.get("node") else ""
            out.append(f"{row.get('storage')}{where} {used}%")
    return out
