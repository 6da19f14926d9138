"""2026-era elicitation across replicas: the question is asked by one replica, answered on another.

Two in-process replicas (the ``pvemcp serve --http`` code path) share one PostgreSQL and sit behind
HAProxy, round-robin. A client that can answer forms confirms destructive calls; its retry carrying
the answer goes through the balancer too, so it lands on the other replica. Every confirmed call must
run exactly once, and a replayed answer must be refused on either replica.
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from pvemcp.door._core import App, load_app_config
from pvemcp.door.transports import HttpSettings, http_endpoint
from pvemcp.sim import running_simulator
from reliability.helpers import cluster_env, mutations, text_of

from .infra import running_haproxy, running_postgres

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300), pytest.mark.usefixtures("binaries")]


class Accept:
    """Answers every form with confirm: true, counting the questions."""

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, context: object, params: object) -> object:
        import mcp_types as types

        self.asked += 1
        return types.ElicitResult(action="accept", content={"confirm": True})


async def test_an_answer_is_accepted_on_another_replica_once(tmp_path: Path) -> None:
    for name in ("audit.key", "secret.key"):
        (tmp_path / name).write_text(secrets.token_hex(32))
        (tmp_path / name).chmod(0o600)
    with running_postgres() as db_url:
        async with running_simulator(seed=1, task_speed=50.0) as sim:
            env = cluster_env(
                sim,
                PVEMCP_STATE_URL=db_url,
                PVEMCP_AUDIT_KEY_FILE=str(tmp_path / "audit.key"),
                PVEMCP_SECRET_KEY_FILE=str(tmp_path / "secret.key"),
            )
            settings = HttpSettings(host="127.0.0.1", port=0)
            async with (
                http_endpoint(App(load_app_config(config_path=None, env=env)), settings) as a,
                http_endpoint(App(load_app_config(config_path=None, env=env)), settings) as b,
            ):
                with running_haproxy([a.port, b.port], tmp_path / "haproxy.log") as lb:
                    running = sorted(v for v, g in sim.state.guests.items() if g.status == "running")[:4]
                    answers = Accept()
                    async with (
                        httpx2.AsyncClient(timeout=60) as http,
                        Client(
                            streamable_http_client(f"http://127.0.0.1:{lb}/mcp", http_client=http),
                            elicitation_callback=answers,  # type: ignore[arg-type]
                        ) as client,
                    ):
                        for vmid in running:
                            result = await client.call_tool("guest_stop", {"vmids": [vmid], "wait": 0})
                            assert not result.is_error, text_of(result)
                    assert answers.asked == len(running)
                    paths = Counter(r.path for r in mutations(sim.request_log))
                    assert sorted(paths) == sorted(
                        f"/nodes/{sim.state.guests[v].node}/{sim.state.guests[v].type}/{v}/status/stop" for v in running
                    )
                    assert set(paths.values()) == {1}
