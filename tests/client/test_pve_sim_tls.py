"""Certificate pinning and verification against the simulator's self-signed certificate."""

from __future__ import annotations

from typing import Any

import pytest

from pvemcp.core.pve.client import PveClient
from pvemcp.core.pve.config import ClientConfig
from pvemcp.core.pve.errors import PveError

from .conftest import needs_sim
from .simhelp import token_config

pytestmark = [pytest.mark.anyio, needs_sim]

WRONG = ":".join(["00"] * 32)


async def test_pin_success_any_spelling(sim: Any) -> None:
    for spelling in (sim.fingerprint, sim.fingerprint.lower(), sim.fingerprint.replace(":", "")):
        async with PveClient(token_config(sim, fingerprint=spelling)) as pve:
            assert "version" in await pve.get("/version")


async def test_pin_mismatch_is_refused_before_anything_is_sent(sim: Any) -> None:
    before = len(sim.request_log)
    for method in ("GET", "POST"):
        async with PveClient(token_config(sim, fingerprint=WRONG)) as pve:
            with pytest.raises(PveError) as info:
                if method == "GET":
                    await pve.get("/version")
                else:
                    await pve.post("/nodes/{node}/qemu/{vmid}/status/start", path={"node": "pve1", "vmid": 100})
        err = info.value
        assert err.kind == "tls" and err.status is None
        assert WRONG in err.message and sim.fingerprint in err.message  # both fingerprints shown
        assert "nothing was sent" in err.hint
        assert sim.token_secret not in str(err)
    assert len(sim.request_log) == before  # no request reached the simulator


async def test_pin_mismatch_is_not_retried(sim: Any) -> None:
    async with PveClient(token_config(sim, fingerprint=WRONG, retries=5)) as pve:
        with pytest.raises(PveError, match="mismatch"):
            await pve.get("/version")


async def test_ca_file_verification(sim: Any) -> None:
    cfg = ClientConfig(url=sim.url, token_id=sim.token_id, token_secret=sim.token_secret, ca_file=sim.ca_file)
    async with PveClient(cfg) as pve:
        assert "version" in await pve.get("/version")


async def test_default_verification_rejects_self_signed_certificate(sim: Any) -> None:
    before = len(sim.request_log)
    cfg = ClientConfig(url=sim.url, token_id=sim.token_id, token_secret=sim.token_secret)
    async with PveClient(cfg) as pve:
        with pytest.raises(PveError) as info:
            await pve.get("/version")
    assert info.value.kind == "tls" and "fingerprint" in info.value.hint
    assert len(sim.request_log) == before


async def test_insecure_opt_in_works_and_warns(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    cfg = ClientConfig(url=sim.url, token_id=sim.token_id, token_secret=sim.token_secret, insecure=True)
    async with PveClient(cfg) as pve:
        assert "version" in await pve.get("/version")
    assert any("DISABLED" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
