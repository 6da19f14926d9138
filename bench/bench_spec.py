"""Benchmark: spec load + input-schema derivation for the ~30 operations the curated tools use.

Each run happens in a fresh interpreter, so the figure is a cold start (parse openapi.json, derive
and meta-check nothing else). Prints the median of several runs against the 100 ms target, plus the
cost of importing the interpreter alone for scale. Not a test: figures are printed, never asserted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

OPERATIONS = [
    "GET /cluster/resources",
    "GET /cluster/status",
    "GET /cluster/nextid",
    "GET /cluster/backup",
    "POST /cluster/backup",
    "GET /cluster/tasks",
    "GET /nodes",
    "GET /nodes/{node}/status",
    "GET /nodes/{node}/qemu",
    "POST /nodes/{node}/qemu",
    "GET /nodes/{node}/qemu/{vmid}/status/current",
    "POST /nodes/{node}/qemu/{vmid}/status/start",
    "POST /nodes/{node}/qemu/{vmid}/status/stop",
    "POST /nodes/{node}/qemu/{vmid}/status/shutdown",
    "POST /nodes/{node}/qemu/{vmid}/status/reboot",
    "POST /nodes/{node}/qemu/{vmid}/clone",
    "DELETE /nodes/{node}/qemu/{vmid}",
    "GET /nodes/{node}/qemu/{vmid}/config",
    "PUT /nodes/{node}/qemu/{vmid}/config",
    "GET /nodes/{node}/lxc",
    "POST /nodes/{node}/lxc",
    "POST /nodes/{node}/lxc/{vmid}/status/start",
    "GET /storage",
    "GET /nodes/{node}/storage",
    "GET /nodes/{node}/storage/{storage}/content",
    "GET /nodes/{node}/qemu/{vmid}/snapshot",
    "POST /nodes/{node}/qemu/{vmid}/snapshot",
    "POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback",
    "POST /nodes/{node}/vzdump",
    "GET /nodes/{node}/tasks",
    "GET /nodes/{node}/tasks/{upid}/status",
]

_PROBE = """
import time
t0 = time.perf_counter()
from pvemcp.dialect.model import load_spec
spec = load_spec()
for key in OPS:
    spec.operation(key).input_schema
print((time.perf_counter() - t0) * 1000)
"""

_BASELINE = "import time; t0 = time.perf_counter(); import json; print((time.perf_counter() - t0) * 1000)"


def _run(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main(runs: int = 7) -> None:
    probe = f"OPS = {OPERATIONS!r}\n{_PROBE}"
    load = [_run(probe) for _ in range(runs)]
    print(
        f"spec load + {len(OPERATIONS)} input schemas, cold, median of {runs}: {statistics.median(load):.1f} ms "
        f"(min {min(load):.1f}, max {max(load):.1f}; target <= 100 ms)"
    )


if __name__ == "__main__":
    main()
