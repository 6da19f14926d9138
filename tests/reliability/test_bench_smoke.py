"""The proof benchmark's CI smoke: ``python bench/bench_proof.py --quick`` runs end to end and prints its table.

Only that the script works is checked (exit status, the rows and the target lines are there). Its figures are
timings and are never asserted; the full run with the peers is for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import subprocess

import pytest

from .helpers import COUNTS, REPO, python, subprocess_env


@pytest.mark.timeout(300)
def test_bench_proof_quick_prints_the_table() -> None:
    done = subprocess.run(
        [python(), str(REPO / "bench" / "bench_proof.py"), "--quick"],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    table = done.stdout
    for row in (
        "cold start, median",
        "spawn → first list answered",
        "first ÷ later call",
        "first ÷ later call at the server's pipe",
        "tool-list chars",
        "per-call overhead",
        "batch speed-up",
        "10,000 guests",
        "the simulator's answer",
    ):
        assert row in table, f"missing row {row!r} in:\n{table}"
    for target in (
        "spawn → tools/list ≤ 1.05× floor",
        "first call ≤ 2× a warm call",
        "guest_list at 10,000 guests ≤ 3× the simulator's answer",
        "peak RSS after start ≤ floor + 15 MB",
        "peak RSS after the 10,000-guest list ≤ 100 MB",
        "per-call overhead ≤ 1.5×",
    ):
        assert target in table, f"missing target {target!r} in:\n{table}"
    assert "error:" not in table, table
    assert "wire timing failed" not in done.stderr, done.stderr[-4000:]
    COUNTS["bench smoke: runs"] += 1
