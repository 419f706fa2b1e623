"""Load run against `ganforge serve` on loopback: ≥ 1,000 requests at concurrency 16.

Starts the real server (`python -m ganforge serve`, uvicorn, default --workers 2) as a subprocess on the
Fashion-MNIST DCGAN of `--ckpt` (default: runs/demo from `make demo`; with no checkpoint there, a width-64
DCGAN is trained for a few steps first: the load does not depend on image quality). Then 16 concurrent
clients send `--requests` POST /v1/generate requests (png, n cycling 1, 2, 4, 8, a new seed each) and
the script reports latency percentiles, throughput, errors, and the server's resident memory (VmRSS from
/proc) after start-up + warm-up and after the run; a second, identical run checks that memory does not
keep growing. Writes bench/results/serve_load.json.

    .venv/bin/python bench/serve_load.py [--ckpt runs/demo] [--requests 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _common import demo_checkpoint, shown, start_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def load(url: str, requests: int, concurrency: int, first_seed: int) -> dict:
    sizes = (1, 2, 4, 8)
    latencies, errors, statuses = [], 0, {}
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            try:
                r = await http.post(url + "/v1/generate", json={"n": sizes[i % 4], "seed": first_seed + i})
                ok = r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"requests": requests, "concurrency": concurrency, "errors": errors, "statuses": statuses,
            "wall_s": round(wall, 2), "requests_per_s": round(requests / wall, 1),
            "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 1), "p90": round(float(np.percentile(ms, 90)), 1),
                           "p99": round(float(np.percentile(ms, 99)), 1), "max": round(float(ms.max()), 1)}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", help="run or checkpoint directory (default: runs/demo, else a short training run)")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "serve_load.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganforge-load-"))
    ckpt = demo_checkpoint(args.ckpt, tmp)
    server, url, argv = start_server(ckpt, "--workers", str(args.workers))
    try:
        rss_start = rss_mb(server.pid)
        asyncio.run(load(url, 32, args.concurrency, 10**6))  # warm-up: first calls allocate the conv buffers
        rss_warm = rss_mb(server.pid)
        first = asyncio.run(load(url, args.requests, args.concurrency, 0))
        rss_after = rss_mb(server.pid)
        second = asyncio.run(load(url, args.requests, args.concurrency, args.requests))
        rss_after2 = rss_mb(server.pid)
        alive = server.poll() is None and httpx.get(url + "/health").status_code == 200
    finally:
        server.terminate()
        server.wait(10)
    result = {
        "benchmark": "serve_load",
        "command": " ".join([Path(sys.executable).name, "bench/serve_load.py"] + sys.argv[1:]),
        "server": " ".join(["ganforge", *argv[:2], shown(ckpt), *argv[5:]]),
        "checkpoint": shown(ckpt),
        "requests": "POST /v1/generate, png, n cycling 1/2/4/8, a new seed each",
        "run_1": first, "run_2": second,
        "rss_mb": {"after_start": round(rss_start, 1), "after_warmup": round(rss_warm, 1),
                   "after_run_1": round(rss_after, 1), "after_run_2": round(rss_after2, 1)},
        "server_alive_after": alive,
        "pass": first["errors"] == 0 and second["errors"] == 0 and alive and args.requests >= 1000,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
