"""End-to-end time of `ganforge evaluate` on 10,000 samples, run as a user runs it.

A DCGAN (width 64) is trained for a few steps on Fashion-MNIST with `ganforge train` (the quality of the
checkpoint does not matter here, only the work of evaluating it); then

    ganforge evaluate --ckpt RUN --data builtin:fashion-mnist --metrics fid,kid,pr,is --n 10000 --features fashion

runs as a subprocess. Each timing is the whole command: interpreter start, imports, loading the
checkpoint, sampling 10,000 images, features, metrics.

Without --baseline: once with an empty ganforge cache (the reference statistics of the test split are
computed and cached), then --repeats times with that cache.

With --baseline REV: the same command from a `git worktree` of REV (PYTHONPATH=its src) and from this
checkout (PYTHONPATH=src), on the same checkpoint. First once each with its own empty cache (both must
extract bit-identical reference features), then --rounds rounds of one run each, alternating which goes
first, both reading one GANFORGE_CACHE. Reported: median wall and CPU seconds of each, the ratio
baseline / current (of the medians, and per round), and every metric value of both with the largest
difference, which must stay within float noise. --threads runs the whole comparison once per thread
count (OMP_NUM_THREADS; 0: torch's default, all cores).
Writes bench/results/evaluate_speed.json.

    .venv/bin/python bench/evaluate_speed.py [--n 10000] [--repeats 1]
    .venv/bin/python bench/evaluate_speed.py --baseline b90220d --rounds 3 --threads 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GANFORGE = [sys.executable, "-m", "ganforge"]
# Metric values of the two revisions agree when |a - b| <= ABS_TOL + REL_TOL * |b|: float noise, nothing more
REL_TOL, ABS_TOL = 1e-9, 1e-12


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def flat_values(report: dict) -> dict[str, float]:
    return {f"{name}.{k}": v for name, res in report["results"].items() for k, v in res["values"].items()}


def summary(xs: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3),
            "runs": [round(x, 3) for x in xs]}


def reference_features(cache: Path) -> dict[str, np.ndarray]:
    (path,) = sorted((cache / "features").glob("*.npz"))
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def compare(env_for: dict[str, dict[str, str]], eval_cmd, tmp: Path, rounds: int) -> dict[str, object]:
    """Alternating rounds of the two arms; timings, metric values and their agreement."""
    wall: dict[str, list[float]] = {arm: [] for arm in env_for}
    cpu: dict[str, list[float]] = {arm: [] for arm in env_for}
    inside: dict[str, list[float]] = {arm: [] for arm in env_for}
    values: dict[str, list[dict[str, float]]] = {arm: [] for arm in env_for}
    arms = list(env_for)
    for r in range(rounds):
        for arm in (arms if r % 2 == 0 else arms[::-1]):   # alternate who goes first: drift hits both alike
            out = tmp / f"eval_{arm}_{r}.json"
            w, c = run(eval_cmd(out), env_for[arm])
            report = json.loads(out.read_text())
            wall[arm].append(w)
            cpu[arm].append(c)
            inside[arm].append(report["seconds"])
            values[arm].append(flat_values(report))
            print(f"round {r} {arm:<8}: {w:6.2f} s wall, {c:6.2f} s CPU, {report['seconds']:6.2f} s inside", flush=True)
    base, cur = values["baseline"][0], values["current"][0]
    diffs = {k: abs(cur[k] - base[k]) for k in base}
    agree = {k: diffs[k] <= ABS_TOL + REL_TOL * abs(base[k]) for k in base}
    repeatable = all(v == values[arm][0] for arm in values for v in values[arm])
    ratio_rounds = [b / c for b, c in zip(wall["baseline"], wall["current"])]
    return {
        "seconds_wall": {arm: summary(wall[arm]) for arm in arms},
        "seconds_cpu": {arm: summary(cpu[arm]) for arm in arms},
        "seconds_inside_command": {arm: summary(inside[arm]) for arm in arms},
        "ratio_baseline_over_current": {
            "wall_of_medians": round(statistics.median(wall["baseline"]) / statistics.median(wall["current"]), 3),
            "cpu_of_medians": round(statistics.median(cpu["baseline"]) / statistics.median(cpu["current"]), 3),
            "wall_per_round": [round(x, 3) for x in ratio_rounds]},
        "values": {"baseline": base, "current": cur},
        "abs_difference": diffs,
        "max_abs_difference": max(diffs.values()),
        "max_rel_difference": max(d / abs(base[k]) if base[k] else d for k, d in diffs.items()),
        "values_agree": all(agree.values()),
        "values_repeatable_across_rounds": repeatable,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="samples per side")
    ap.add_argument("--metrics", default="fid,kid,pr,is")
    ap.add_argument("--steps", type=int, default=20, help="training steps of the checkpoint")
    ap.add_argument("--repeats", type=int, default=1, help="without --baseline: cached runs after the cold one")
    ap.add_argument("--baseline", metavar="REV", help="git revision to compare with, side by side")
    ap.add_argument("--rounds", type=int, default=3, help="with --baseline: timed runs of each, interleaved")
    ap.add_argument("--threads", type=int, nargs="+", default=[0],
                    help="with --baseline: OMP_NUM_THREADS for both (0: torch's default); one comparison each")
    ap.add_argument("--out", default=str(HERE / "results" / "evaluate_speed.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganforge-evalbench-"))
    worktree = tmp / "baseline"
    doc: dict[str, object] = {"benchmark": "evaluate_speed",
                              "command": " ".join(["python", "bench/evaluate_speed.py", *sys.argv[1:]])}
    load_start = os.getloadavg()[0]
    try:
        current_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GANFORGE_CACHE": str(tmp / "cache")}
        run_dir = tmp / "run"
        run([*GANFORGE, "train", "--data", "builtin:fashion-mnist", "--family", "dcgan", "--steps", str(args.steps),
             "--out", str(run_dir), "--quiet", "--set", "log.tensorboard=false"], current_env)

        def eval_cmd(out: Path) -> list[str]:
            return [*GANFORGE, "evaluate", "--ckpt", str(run_dir), "--data", "builtin:fashion-mnist",
                    "--metrics", args.metrics, "--n", str(args.n), "--features", "fashion", "--out", str(out)]

        doc["evaluate_command"] = "ganforge " + " ".join(eval_cmd(tmp / "eval.json")[3:]).replace(str(tmp), "TMP")
        doc.update({"n": args.n, "metrics": args.metrics.split(","), "checkpoint_steps": args.steps})
        if not args.baseline:
            cold, _ = run(eval_cmd(tmp / "eval.json"), current_env)
            cached = [run(eval_cmd(tmp / "eval.json"), current_env)[0] for _ in range(args.repeats)]
            report = json.loads((tmp / "eval.json").read_text())
            doc.update({"seconds_cold_cache": round(cold, 1), "seconds_cached_reference": [round(c, 1) for c in cached],
                        "values": flat_values(report)})
            print(f"ganforge evaluate, {args.n} samples, {args.metrics}: {cold:.1f} s with an empty cache, "
                  f"{', '.join(f'{c:.1f}' for c in cached)} s with the cached reference")
        else:
            base_rev = git("rev-parse", "--verify", f"{args.baseline}^{{commit}}")
            git("worktree", "add", "--detach", str(worktree), base_rev)
            doc["baseline"] = {"rev": args.baseline, "commit": base_rev, "subject": git("log", "-1", "--format=%s", base_rev)}
            doc["current"] = {"commit": git("rev-parse", "HEAD"),
                              "uncommitted_changes_in_src": bool(git("status", "--porcelain", "--", "src"))}
            env_for = {"baseline": {**current_env, "PYTHONPATH": str(worktree / "src")}, "current": dict(current_env)}
            # cold: each with its own empty cache; the reference features they extract must be bit-identical
            cold = {}
            for arm, env in env_for.items():
                env["GANFORGE_CACHE"] = str(tmp / f"cache_{arm}")
                cold[arm] = round(run(eval_cmd(tmp / f"eval_cold_{arm}.json"), env)[0], 2)
            ref_b, ref_c = (reference_features(tmp / f"cache_{arm}") for arm in env_for)
            doc["seconds_cold_cache"] = cold
            doc["reference_features_bit_identical"] = (ref_b.keys() == ref_c.keys()
                                                       and all(np.array_equal(ref_b[k], ref_c[k]) for k in ref_b))
            for env in env_for.values():   # from here on both read one cache
                env["GANFORGE_CACHE"] = str(tmp / "cache_current")
            doc["comparisons"] = {}
            for threads in args.threads:
                label = f"threads_{threads}" if threads else f"threads_default_{torch.get_num_threads()}"
                envs = {arm: ({**env, "OMP_NUM_THREADS": str(threads)} if threads else env) for arm, env in env_for.items()}
                print(f"-- {label}", flush=True)
                doc["comparisons"][label] = compare(envs, eval_cmd, tmp, args.rounds)
            first = next(iter(doc["comparisons"].values()))
            doc["ratio_baseline_over_current"] = first["ratio_baseline_over_current"]["wall_of_medians"]
            doc["pass_values_agree"] = all(c["values_agree"] for c in doc["comparisons"].values())
            doc["max_abs_difference"] = max(c["max_abs_difference"] for c in doc["comparisons"].values())
            for label, c in doc["comparisons"].items():
                w = c["seconds_wall"]
                print(f"{label}: baseline {w['baseline']['median']:.2f} s, current {w['current']['median']:.2f} s "
                      f"(median wall), ratio {c['ratio_baseline_over_current']['wall_of_medians']:.2f}; CPU ratio "
                      f"{c['ratio_baseline_over_current']['cpu_of_medians']:.2f}; values agree: {c['values_agree']} "
                      f"(max abs difference {c['max_abs_difference']:.3g})")
    finally:
        if worktree.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    doc["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                      "torch_threads": torch.get_num_threads(),
                      "load_average_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}}
    doc["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
