"""Metrics of a guest or a node as a compact summary instead of raw RRD rows.

``rrddata`` returns up to 1440 rows per timeframe (pve-cluster ``PVE::RRD::create_rrd_data``, PVE 9
layout): a minute apart for an hour or a day, 30 minutes for a week. Per series this gives last, average, peak and
when (UTC), and a one-line sparkline of the whole timeframe a person can glance at: a few hundred
characters instead of ~15 KB of rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pvemcp.core.kinds import HandlerKind, Mode
from pvemcp.core.tools.base import JsonDict, RunContext, ToolError, ToolResult, guest_label
from pvemcp.core.tools.guests import resolve_targets

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 35


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def _bytes(v: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(v) < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return str(v)


def _rate(v: float) -> str:
    return _bytes(v) + "/s"


# series: (label, RRD field, formatter)
GUEST_SERIES: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("cpu", "cpu", _pct),
    ("memory", "mem", _bytes),
    ("net in", "netin", _rate),
    ("net out", "netout", _rate),
    ("disk read", "diskread", _rate),
    ("disk write", "diskwrite", _rate),
)
NODE_SERIES: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("cpu", "cpu", _pct),
    ("iowait", "iowait", _pct),
    ("load", "loadavg", lambda v: f"{v:.2f}"),
    ("memory", "memused", _bytes),
    ("net in", "netin", _rate),
    ("net out", "netout", _rate),
)


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH) -> str:
    """Values bucketed to ``width`` columns (mean of each), scaled from 0 to the peak; gaps as spaces."""
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    buckets: list[float | None] = []
    for i in range(0, len(values), step):
        chunk = [v for v in values[i : i + step] if v is not None]
        buckets.append(sum(chunk) / len(chunk) if chunk else None)
    top = max((b for b in buckets if b is not None), default=0.0)
    if top <= 0:
        return "".join(" " if b is None else BARS[0] for b in buckets)
    return "".join(
        " " if b is None else BARS[min(len(BARS) - 1, int(b / top * (len(BARS) - 1) + 0.5))] for b in buckets
    )


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def summarize(rows: Sequence[Mapping[str, Any]], series: Sequence[tuple[str, str, Callable[[float], str]]]) -> JsonDict:
    """Per series: last, avg, peak, peak_at, sparkline (formatted for people; raw numbers alongside)."""
    out: JsonDict = {}
    for label, key, fmt in series:
        points = [(int(r["time"]), float(r[key])) for r in rows if isinstance(r.get(key), int | float)]
        if not points:
            continue
        values = [v for _, v in points]
        peak_at, peak = max(points, key=lambda p: p[1])
        avg = sum(values) / len(values)
        out[label] = {
            "last": fmt(values[-1]),
            "avg": fmt(avg),
            "peak": fmt(peak),
            "peak_at": _when(peak_at),
            "spark": sparkline([r.get(key) if isinstance(r.get(key), int | float) else None for r in rows]),
            "raw": {"last": values[-1], "avg": round(avg, 6), "peak": peak},
        }
    return out


def _result(who: str, timeframe: str, rows: Sequence[Mapping[str, Any]], data: JsonDict) -> ToolResult:
    if not data:
        return ToolResult({"data": {"series": {}}}, f"{who}: no data for the last {timeframe}")
    start, end = int(rows[0]["time"]), int(rows[-1]["time"])
    # The headline is one line; every series (sparkline, last, avg, peak and when) follows in the text
    # face, written from the structured result (core/render.py), so it is there once, in both faces.
    cpu = data.get("cpu")
    peak = f"; cpu peak {cpu['peak']} at {cpu['peak_at']}" if cpu else ""
    headline = f"{who}, last {timeframe}{peak}"
    return ToolResult(
        {"data": {"timeframe": timeframe, "from": _when(start), "to": _when(end), "series": data}}, headline
    )


def _timeframe(rc: RunContext) -> str:
    timeframe = str(rc.args.get("timeframe") or "hour")
    if timeframe not in ("hour", "day", "week", "month", "year", "decade"):
        raise ToolError("timeframe: hour, day, week, month, year (or decade for nodes)", field="timeframe")
    return timeframe


async def guest_metrics(rc: RunContext) -> ToolResult:
    (guest,) = await resolve_targets(rc)
    timeframe = _timeframe(rc)
    params = {"timeframe": timeframe, "cf": rc.args.get("cf") or "AVERAGE"}
    rows = await rc.client.get(
        f"/nodes/{{node}}/{guest.type}/{{vmid}}/rrddata", path={"node": guest.node, "vmid": guest.vmid}, params=params
    )
    rows = [r for r in rows or [] if isinstance(r, Mapping) and "time" in r]
    return _result(guest_label(guest), timeframe, rows, summarize(rows, GUEST_SERIES))


GUEST_METRICS = HandlerKind("guest_metrics", Mode.READ, guest_metrics)


async def node_metrics(rc: RunContext) -> ToolResult:
    node = rc.args.get("node")
    if not node:
        raise ToolError("node is required", field="node")
    timeframe = _timeframe(rc)
    params = {"timeframe": timeframe, "cf": rc.args.get("cf") or "AVERAGE"}
    rows = await rc.client.get("/nodes/{node}/rrddata", path={"node": node}, params=params)
    rows = [r for r in rows or [] if isinstance(r, Mapping) and "time" in r]
    return _result(f"node {node}", timeframe, rows, summarize(rows, NODE_SERIES))


NODE_METRICS = HandlerKind("node_metrics", Mode.READ, node_metrics)
