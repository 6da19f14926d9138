"""Several clusters from one TOML file: every tool gains a required `cluster` argument that picks the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pvemcp.core.app import App, load_app_config
from pvemcp.core.tools.base import CallContext, ToolResult
from pvemcp.sim import running_simulator

pytestmark = pytest.mark.anyio


def _table(name: str, sim: Any) -> str:
    return (
        f'[clusters.{name}]\nurl = "{sim.url}"\ntoken_id = "{sim.token_id}"\n'
        f'token_secret = "{sim.token_secret}"\nfingerprint = "{sim.fingerprint}"\n'
    )


async def test_cluster_argument_routes_each_call(tmp_path: Path) -> None:
    async with running_simulator(seed=1, guests=12) as one, running_simulator(seed=2, guests=5) as two:
        config_file = tmp_path / "pvemcp.toml"
        config_file.write_text(_table("lab", one) + _table("prod", two) + "[policy]\nread_only = true\n")
        config = load_app_config(config_file, env={})
        assert config.cluster_names == ("lab", "prod")
        async with App(config) as app:
            listing = next(t for t in app.tools() if t.name == "guest_list")
            assert listing.input_schema["properties"]["cluster"] == {"enum": ["lab", "prod"]}
            assert "cluster" in listing.input_schema["required"]
            missing = await app.call("guest_list", {}, CallContext())
            assert isinstance(missing, ToolResult) and missing.is_error and "cluster" in missing.text
            lab = await app.call("guest_list", {"cluster": "lab"}, CallContext())
            prod = await app.call("guest_list", {"cluster": "prod"}, CallContext())
            assert isinstance(lab, ToolResult) and isinstance(prod, ToolResult)
            assert lab.structured["total"] == len(one.state.guests)
            assert prod.structured["total"] == len(two.state.guests)
            assert lab.structured["total"] != prod.structured["total"]
