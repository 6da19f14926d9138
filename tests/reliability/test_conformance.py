"""The official MCP conformance suite against ``pvemcp serve --http``, both spec versions (scripts/conformance.sh).

The script installs Node 22 and the pinned suite from the npm registry into a cache on first use, starts the
real server on a simulator, and passes only when every failing check is in the checked-in baseline
(tests/reliability/conformance-baseline-{2025,2026}.yml) and no baseline entry has started passing. It is
skipped only when ``npm`` is not on PATH; any other problem (no registry, a new failure) fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import COUNTS, FIGURES, REPO, python, subprocess_env

SCRIPT = REPO / "scripts" / "conformance.sh"
LEGS = ("2025-11-25", "2026-07-28")


@pytest.mark.timeout(600)
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not on PATH")
def test_conformance_suite_matches_the_baselines(tmp_path: Path) -> None:
    env = subprocess_env(PYTHON=python(), PVEMCP_CONFORMANCE_OUT=str(tmp_path))
    if "PVEMCP_CONFORMANCE_DIR" in os.environ:
        env["PVEMCP_CONFORMANCE_DIR"] = os.environ["PVEMCP_CONFORMANCE_DIR"]
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=540, check=False
    )
    output = done.stdout + done.stderr
    for leg in LEGS:
        log = (tmp_path / f"{leg}.log").read_text(encoding="utf-8") if (tmp_path / f"{leg}.log").exists() else ""
        total = re.search(r"Total: (\d+) passed, (\d+) failed", log)
        if total:
            passed, failed = int(total.group(1)), int(total.group(2))
            COUNTS[f"conformance {leg}: checks run"] += passed + failed
            FIGURES[f"conformance {leg}"] = f"{passed} passed, {failed} failed (all failures in the baseline)"
    assert done.returncode == 0, output[-6000:]
    assert all(f"== {leg}: exit 0" in output for leg in LEGS), output[-6000:]
