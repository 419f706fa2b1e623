"""Run every benchmark script in bench/ one after the other, then summarise each results JSON.

A benchmark script is a `bench/*.py` file with a `__main__` block (this file excepted); the known ones
run first in a fixed order (speed, then mixtures), any others after them alphabetically. Each runs in
its own process with this interpreter, so one crashing does not stop the rest; each writes
`bench/results/<script name>.json`, and a result older than this run is reported as missing.

    .venv/bin/python bench/run_all.py                 # everything, full settings (what `make bench` runs)
    .venv/bin/python bench/run_all.py --quick         # --quick for the scripts that have it
    .venv/bin/python bench/run_all.py --only speed    # a subset, by script name
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
ORDER = ("speed", "mixtures", "fid_speed", "evaluate_speed", "health", "fid_curve")  # known scripts first; anything else found in bench/ runs after them


def find_scripts() -> list[Path]:
    found = {p.stem: p for p in sorted(BENCH.glob("*.py"))
             if p.name != Path(__file__).name and not p.name.startswith("_")
             and "__main__" in p.read_text(encoding="utf-8", errors="replace")}
    return [found.pop(n) for n in ORDER if n in found] + list(found.values())


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict) and "median" in v:
        return f"{v['median']:.4g} (min {v['min']:.4g}, max {v['max']:.4g})"
    if isinstance(v, dict) and "of_medians" in v:
        return f"{v['of_medians']:.4g} (per-round pairs: {_fmt(v['paired'])})"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def summarise_speed(r: dict[str, Any]) -> list[str]:
    lines = [f"matmul peaks GFLOP/s: {_fmt(r['matmul_peak_gflop_per_s'])}"]
    for setup, res in r["results"].items():
        lines += [f"{setup} {arm:<17} {_fmt(v)} img/s" for arm, v in res["images_per_s"].items()]
        lines += [f"{setup} {k}: {_fmt(v)}" for k, v in res["ratios"].items()]
    lines.append(f"acceptance: {_fmt(r['acceptance'])}")
    return lines


def summarise_mixtures(r: dict[str, Any]) -> list[str]:
    lines = [f"{row['dataset']:<7} {row['objective']:<8} modes {row['modes_covered']}/{row['n_modes']} "
             f"HQ {[f'{h:.0%}' for h in row['high_quality_fraction']]} max wall {row['max_wall_s']} s "
             f"all seeds pass: {row['all_seeds_pass']}" for row in r.get("summary", [])]
    lines.append(f"acceptance (ns, all seeds): {r.get('acceptance_ns_all_seeds')}")
    return lines


def summarise_generic(r: dict[str, Any]) -> list[str]:
    """Scalars and every pass/acceptance entry of an unknown benchmark's JSON."""
    lines = []
    for k, v in r.items():
        if k in ("command", "machine", "time") or (isinstance(v, (list, dict)) and "pass" not in k):
            continue
        lines.append(f"{k}: {_fmt(v)}")
    return lines


SUMMARIES = {"speed": summarise_speed, "mixtures": summarise_mixtures}


def pass_flags(r: dict[str, Any]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for k, v in r.items():
        if k == "pass" and isinstance(v, dict):
            flags.update(v)
        elif ("pass" in k or "acceptance" in k) and isinstance(v, bool):
            flags[k] = v
    return flags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="pass --quick to the scripts that accept it")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts (names without .py)")
    args = p.parse_args(argv)
    scripts = find_scripts()
    if args.only:
        unknown = sorted(set(args.only) - {s.stem for s in scripts})
        if unknown:
            raise SystemExit(f"no benchmark named {', '.join(unknown)}; found: {', '.join(s.stem for s in scripts)}")
        scripts = [s for s in scripts if s.stem in args.only]
    report: list[tuple[str, int, float, dict[str, Any] | None]] = []
    for script in scripts:
        cmd = [sys.executable, str(script)]
        if args.quick and '"--quick"' in script.read_text(encoding="utf-8", errors="replace"):
            cmd.append("--quick")
        print(f"\n=== {script.stem}: {' '.join(cmd)}", flush=True)
        t0, wall0 = time.time(), time.perf_counter()
        rc = subprocess.call(cmd, cwd=BENCH.parent)
        wall = time.perf_counter() - wall0
        out = RESULTS / f"{script.stem}.json"
        result = json.loads(out.read_text()) if out.exists() and out.stat().st_mtime >= t0 else None
        report.append((script.stem, rc, wall, result))

    print("\n=== summary")
    failed = False
    for name, rc, wall, result in report:
        status = "ok" if rc == 0 else f"exit code {rc}"
        print(f"\n{name}: {status}, {wall:.0f} s")
        if result is None:
            print(f"  no fresh {RESULTS.name}/{name}.json")
            failed = True
            continue
        for line in SUMMARIES.get(name, summarise_generic)(result):
            print(f"  {line}")
        flags = pass_flags(result)
        if flags:
            print(f"  pass flags: {', '.join(f'{k}={v}' for k, v in flags.items())}")
        failed = failed or rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
