"""Helpers the serving benchmarks share (not a benchmark: run_all skips files starting with `_`)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the browser benches read pages through tests/browser.py, as the tests do
    sys.path.insert(0, str(ROOT))


def shown(path: str | Path) -> str:
    """A path as results JSON records it: relative to the repository when inside it, else only its name
    (a temporary folder's absolute path means nothing on another machine)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return f"<temporary>/{p.name}"


def demo_checkpoint(arg: str | None, tmp: Path) -> Path:
    """--ckpt when given; else `make demo`'s runs/demo; else a 20-step DCGAN (latency and load do not
    depend on how well the generator is trained)."""
    if arg:
        return Path(arg)
    demo = ROOT / "runs" / "demo"
    if (demo / "checkpoints").exists():
        return demo
    subprocess.run([sys.executable, "-m", "ganforge", "train", "--config", str(ROOT / "configs" / "demo-fashion.yaml"),
                    "--steps", "20", "--out", str(tmp / "run"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return tmp / "run"


def start_server(ckpt: Path, *extra: str, timeout: float = 60.0) -> tuple[subprocess.Popen, str, list[str]]:
    """`python -m ganforge serve` on a free loopback port, once /health answers: (process, url, argv)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["serve", "--ckpt", str(ckpt), "--port", str(port), *extra]
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ganforge serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, argv
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"ganforge serve did not answer /health within {timeout:.0f} s")
