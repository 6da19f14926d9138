"""Benchmark: what the operations of issue 13 put into a model's context, as ratios.

    python bench/bench_ops.py

- **metrics**: ``guest_metrics`` (text face and structured content) against the raw ``rrddata`` rows it
  summarizes, per timeframe — the reason the tool exists;
- **tool list**: model-visible characters of the opt-in toolsets (``ops``, ``metrics``, ``exec``) beside
  the default listing, and the tool counts against the 40 tools some clients show.

Everything runs in-process against the embedded simulator over loopback HTTPS. Figures are printed,
never asserted.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import anyio

from pvemcp.core.app import App, CallContext, ToolResult
from pvemcp.core.catalog import Catalog
from pvemcp.core.config import load_app_config
from pvemcp.core.render import face
from pvemcp.dialect.model import load_spec
from pvemcp.sim import running_simulator

OPT_IN = ["ops", "metrics", "exec"]


def _compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _listing_chars(catalog: Catalog, toolsets: list[str] | None) -> tuple[int, int]:
    tools = catalog.select(toolsets)
    visible = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in tools]
    return len(tools), _compact(visible)


async def _metrics() -> None:
    async with running_simulator(seed=1, task_speed=0.0) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "pvemcp.toml"
            config.write_text('[policy]\ntoolsets = ["metrics"]\n', encoding="utf-8")
            env = {
                "PROXMOX_URL": sim.url,
                "PROXMOX_TOKEN_ID": sim.token_id,
                "PROXMOX_TOKEN_SECRET": sim.token_secret,
                "PROXMOX_FINGERPRINT": sim.fingerprint,
            }
            async with App(load_app_config(config_path=config, env=env)) as app:
                client = await app.client()
                print(f"{'timeframe':<10}{'raw rows':>10}{'raw chars':>12}{'text':>8}{'structured':>12}{'ratio':>10}")
                for timeframe in ("hour", "day", "week"):
                    rows = await client.get(
                        "/nodes/{node}/qemu/{vmid}/rrddata",
                        path={"node": "pve1", "vmid": 100},
                        params={"timeframe": timeframe},
                    )
                    outcome = await app.call("guest_metrics", {"vmid": 100, "timeframe": timeframe}, CallContext())
                    assert isinstance(outcome, ToolResult)
                    text = len(
                        face(outcome.text, outcome.structured)
                    )  # the text face a host shows, as the door sends it
                    raw, structured = _compact(rows), _compact(outcome.structured)
                    ratio = raw / max(text, structured)
                    print(f"{timeframe:<10}{len(rows):>10}{raw:>12,}{text:>8,}{structured:>12,}{ratio:>9.0f}x")


def main() -> None:
    os.environ.setdefault("PVEMCP_CACHE_DIR", "off")
    catalog = Catalog.load(load_spec())
    default_n, default_chars = _listing_chars(catalog, None)
    print(f"default toolsets: {default_n} tools, {default_chars:,} model-visible characters")
    for toolset in OPT_IN:
        n, chars = _listing_chars(catalog, [toolset])
        both_n, _ = _listing_chars(catalog, [*catalog.default_toolsets, toolset])
        print(f"  + {toolset:<8} {n:>2} tools, {chars:>6,} characters; with the defaults: {both_n} tools (cap 40)")
    anyio.run(_metrics)


if __name__ == "__main__":
    main()
