"""The seeded cluster: deterministic per seed, realistic contents, scales to 10,000 guests."""

from __future__ import annotations

from pvemcp.sim.clock import SimClock
from pvemcp.sim.seed import build_cluster
from pvemcp.sim.state import config_digest, format_size, parse_size


def _snapshot(seed: int, *, nodes: int = 3, guests: int = 12) -> dict[int, str]:
    state = build_cluster(
        seed=seed, nodes=nodes, guests=guests, clock=SimClock(start_epoch=1_760_000_000.0, monotonic=lambda: 0.0)
    )
    return {vmid: config_digest(g) for vmid, g in state.guests.items()}


def test_same_seed_same_cluster() -> None:
    assert _snapshot(1) == _snapshot(1)
    assert _snapshot(1) != _snapshot(2)


def test_default_cluster_contents() -> None:
    state = build_cluster(seed=1)
    assert list(state.nodes) == ["pve1", "pve2", "pve3"]
    assert {s.type for s in state.storages.values()} == {"dir", "lvmthin", "nfs"}
    guests = state.guests.values()
    assert len(state.guests) == 12
    assert {g.type for g in guests} == {"qemu", "lxc"}
    assert {g.status for g in guests} == {"running", "stopped"}
    assert any(g.template for g in guests) and any(g.snapshots for g in guests)
    assert all(g.config.get("tags") for g in guests) and {g.pool for g in guests} >= {"prod", "infra", "dev"}
    assert len(state.backup_jobs) == 2
    contents = {v.content for v in state.volumes.values()}
    assert contents == {"images", "rootdir", "iso", "vztmpl", "backup"}


def test_small_and_large_clusters() -> None:
    small = build_cluster(seed=3, nodes=1, guests=3)
    assert len(small.guests) == 3 and {g.node for g in small.guests.values()} == {"pve1"}
    big = build_cluster(seed=3, nodes=4, guests=10_000)
    assert len(big.guests) == 10_000
    assert {g.node for g in big.guests.values()} == {"pve1", "pve2", "pve3", "pve4"}


def test_sizes() -> None:
    assert parse_size("32G") == 32 * 1024**3 and format_size(32 * 1024**3) == "32G"
    assert format_size(4 * 1024**2) == "4M" and format_size(1000) == "1000"
