"""Benchmark: ``GET /cluster/resources`` against the simulator with 1,000 and 10,000 guests.

The simulator runs as its own process (``pvemcp sim --port 0``), so the client's JSON decoding does not
eat into the server's CPU; the benchmark prints requests/s (one connection, and 8 concurrent ones, gzip as
clients negotiate it by default), the answer size and the simulator process's RSS. Loopback HTTPS only;
every measurement is bounded by a request count and a time limit, and the simulator is stopped with
SIGTERM (killed if it does not stop). Not a test: figures depend on the machine.

    python bench/bench_sim.py [--seconds 3] [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` from /proc, in MiB (0 where /proc is unavailable)."""
    status = Path(f"/proc/{pid}/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def simulator_process(guests: int) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``pvemcp sim`` on a free loopback port; yields the process and its banner."""
    cmd = [sys.executable, "-m", "pvemcp", "sim", "--port", "0", "--nodes", "5", "--guests", str(guests)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        banner = json.loads(proc.stdout.readline())
        yield proc, banner
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _run(
    client: httpx2.AsyncClient, url: str, seconds: float, workers: int, max_requests: int
) -> tuple[int, float]:
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline and done < max_requests:
            r = await client.get(url)
            r.raise_for_status()
            done += 1

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    return done, time.perf_counter() - start


async def bench(sizes: list[int], seconds: float) -> None:
    rows: list[tuple[int, float, float, float, int, int, float]] = []
    for guests in sizes:
        t0 = time.perf_counter()
        with simulator_process(guests) as (proc, banner):
            start_s = time.perf_counter() - t0
            ctx = ssl.create_default_context(cafile=banner["ca_file"])
            headers = {"Authorization": f"PVEAPIToken={banner['token_id']}={banner['token_secret']}"}
            limits = httpx2.Limits(max_connections=8, max_keepalive_connections=8)
            async with httpx2.AsyncClient(verify=ctx, headers=headers, limits=limits, timeout=60) as client:
                url = banner["url"] + "/cluster/resources"
                first = await client.get(url)
                entries = len(first.json()["data"])
                wire = int(first.headers.get("content-length", len(first.content)))
                n1, t1 = await _run(client, url, seconds, 1, 100_000)
                n8, t8 = await _run(client, url, seconds, 8, 100_000)
            rows.append((guests, n1 / t1, n8 / t8, start_s, entries, wire, rss_mib(proc.pid)))
    print(
        f"{'guests':>7} {'req/s (1 conn)':>15} {'req/s (8 conns)':>16} {'start s':>8} {'entries':>8} "
        f"{'gzip bytes':>11} {'sim RSS MiB':>12}"
    )
    for guests, r1, r8, start_s, entries, wire, rss in rows:
        print(f"{guests:>7} {r1:>15.1f} {r8:>16.1f} {start_s:>8.2f} {entries:>8} {wire:>11} {rss:>12.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated guest counts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    anyio.run(bench, sizes, min(max(args.seconds, 0.5), 30.0))


if __name__ == "__main__":
    main()
