"""Physics events (issue 20, acceptance item 1): fatgan vs a plain WGAN-GP vs PyPI's ctgan on 100,000
`builtin:eprime` events (inclusive e p -> e' X at a 10.6 GeV beam: the scattered electron's px, py, pz), equal
CPU minutes each (default 10).

Arms (the commands are lists at the top of this file, to fix in one place if the CLI's wiring changes):
  fatgan   `ganforge train --data builtin:eprime --family fatgan --time 10m --out RUN`, the user's command
           (the family's defaults: spherical representation, so E' <= E_b by construction; eta MMD^2; feature
           augmentation; pz through FAT-GAN's log(E_b - pz)).
  wgan-gp  the same command with BASELINE_OVERRIDES: representation cartesian (G outputs the encoded row),
           mmd_weight 0, feature_augmentation [] and pz standardised like px and py (data.transforms
           {pz: standard}), i.e. an MLP G and MLP critic on the plainly standardised momenta trained by WGAN-GP
           and nothing else. (The table's columns keep builtin:eprime's bounds |p_i| <= E_b on decoding, which
           clamps each component but does not bound E' = |p|.)
  ctgan    PyPI ctgan 0.12.1 in bench/.venv-ctgan (bench/peer_ctgan.py: its defaults, 2 threads) on the same
           100,000 events written as CSV from ganforge.data.eprime.eprime_events(100000, seed=0) (what
           builtin:eprime loads with its default --rows and --data-seed; checked against the built-in loader when
           it imports). Its `fit` cannot be resumed, so the budget stops its epoch loop at the epoch boundary
           nearest to it (see peer_ctgan.py).
Each ganforge arm then runs `ganforge sample --ckpt RUN --n 100000 --out RUN/samples.csv`; the peer samples
100,000 rows. "Equal CPU minutes" = the same training-time budget: ganforge's --time counts its trainer's fit
(not data preparation), the peer's budget counts its epoch loop (not its VGM transformer fit, timed apart);
every arm's whole-process wall time is recorded too. All arms run one after the other on the same machine.

Measure: 100,000 events from an independent draw of the same generator (seed 1) are the reference, and the
training events measured against it give the noise floor. From (px, py, pz), the derived features E' = |p|,
theta = arccos(pz / |p|), phi = atan2(py, px) in [0, 2 pi), Q2 = 2 E_b (E' - pz), x_B = Q2 / (2 M nu) with
nu = E_b - E', and W = sqrt(max(M^2 + 2 M nu - Q2, 0)) (an unphysical W^2 < 0 shows as W = 0, so it costs in W's
W1 rather than being dropped) — the relations of ganforge.data.eprime. ganforge.metrics.tabular.table_metrics on
these 9 features: per-feature W1 (and W1 / real std) and KS, correlation distance, MMD^2, classifier AUC, and
ganforge.data.eprime.validity of the momenta (finite, energy E' <= E_b, 0 <= x_B <= 1, W above the pion
threshold, all). MMD^2 is averaged over 5 seeded subsets of 2,000 rows (each metric call takes one), on the 9
standardised features (the bar's) and on (px, py, pz) alone (reported). sdmetrics' QualityReport score (run in
the peer venv, 20,000 rows a side) is reported beside them.

Bars (issue 20): (1) fatgan's share of events with E' <= E_b is 100% where the raw WGAN-GP's is not; (2) fatgan's
MMD^2 (9 features) is below the peer's; (3) fatgan's W1 is below the peer's on at least 80% of the 9 features.

    .venv/bin/python bench/events.py                    # 3 arms x 10 min (~40 min in all)
    .venv/bin/python bench/events.py --minutes 5
    .venv/bin/python bench/events.py --quick            # smoke: 1 minute an arm

--data builtin:eprime-elastic runs the same three arms on the events with the elastic peak (e p -> e p, 9.1% of
them, a ridge up to E' = 10.07 GeV; builtin:eprime stops at 8.94 GeV, so there a raw generator has no edge near
E_b to cross). Its user command names the events recipe, `--recipe eprime-fatgan` (tuned on builtin:eprime; the
recipe matches builtin:eprime alone); W's validity rule is then W >= M (the elastic events have W = M); results
go to bench/results/events_elastic.json.

    .venv/bin/python bench/events.py --data builtin:eprime-elastic

Results: bench/results/events.json (no absolute paths): per-arm metrics, wall times, commands, versions,
machine, each bar's verdict. Runs and samples under bench/results/runs/events/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from peer_ctgan import ROOT, machine, rel  # noqa: E402  (stdlib-only module beside this one)

import peer_ctgan  # noqa: E402

GANFORGE_PY = ROOT / ".venv" / "bin" / "python"
RUNS = BENCH / "results" / "runs" / "events"
RESULTS = BENCH / "results" / "events.json"

# --- the arms' commands (fix here if the CLI's wiring changes) ------------------------------------------------
DATA = "builtin:eprime"
TRAIN = ["ganforge", "train", "--data", DATA, "--family", "fatgan", "--time", "{time}", "--out", "{run}"]
BASELINE_OVERRIDES = ["--set", "model.representation=cartesian", "--set", "model.mmd_weight=0",
                      "--set", "model.feature_augmentation=[]", "--set", "data.transforms={pz: standard}"]
SAMPLE = ["ganforge", "sample", "--ckpt", "{run}", "--n", "{n}", "--out", "{run}/samples.csv"]
ARMS = {"fatgan": [], "wgan-gp": BASELINE_OVERRIDES}
PEER_ARM = "ctgan"

EVENTS = 100_000
TRAIN_SEED, REFERENCE_SEED = 0, 1
MOMENTA = ("px", "py", "pz")
FEATURES = ("px", "py", "pz", "E_prime", "theta", "phi", "Q2", "x_B", "W")
MMD_SEEDS = 5
W1_SHARE = 0.8


# -- events and their features --------------------------------------------------------------------------------
def event_features(px, py, pz) -> dict[str, Any]:
    """The 9 features from the momenta, with the relations of ganforge.data.eprime (see the docstring)."""
    import numpy as np

    from ganforge.data.eprime import DEFAULT_BEAM_ENERGY, PROTON_MASS

    px, py, pz = (np.asarray(a, np.float64) for a in (px, py, pz))
    e_b, m = DEFAULT_BEAM_ENERGY, PROTON_MASS
    with np.errstate(all="ignore"):
        e = np.sqrt(px * px + py * py + pz * pz)
        theta = np.arccos(np.clip(pz / e, -1.0, 1.0))
        phi = np.mod(np.arctan2(py, px), 2.0 * math.pi)
        q2 = 2.0 * e_b * (e - pz)
        nu = e_b - e
        x_b = q2 / (2.0 * m * nu)
        w = np.sqrt(np.maximum(m * m + 2.0 * m * nu - q2, 0.0))
    return {"px": px, "py": py, "pz": pz, "E_prime": e, "theta": theta, "phi": phi, "Q2": q2, "x_B": x_b, "W": w}


W_THRESHOLD: float | None = None   # validity's W rule: None -> the pion threshold (builtin:eprime); M with elastic


def write_events(elastic: bool = False) -> dict[str, Any]:
    """The training events (seed 0) as CSV for the peer, and the reference draw (seed 1)."""
    import pandas as pd

    from ganforge.data.eprime import eprime_events

    RUNS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for tag, seed in (("train", TRAIN_SEED), ("reference", REFERENCE_SEED)):
        ev = eprime_events(EVENTS, seed=seed, elastic=elastic)
        df = pd.DataFrame({k: ev[k] for k in MOMENTA})
        path = RUNS / f"eprime_{tag}.csv"
        df.to_csv(path, index=False, float_format="%.17g")
        out[tag] = {"csv": rel(path), "events": EVENTS, "seed": seed, "frame": df}
    try:  # the CSV holds what `--data builtin:eprime` trains on (default --rows / --data-seed)
        import numpy as np

        from ganforge.data.table_builtins import load_table_builtin

        table, _ = load_table_builtin("eprime-elastic" if elastic else "eprime")
        same = all(np.array_equal(np.asarray(table[k], np.float64), out["train"]["frame"][k].to_numpy())
                   for k in MOMENTA)
        out["same_as_builtin"] = bool(same)
    except Exception as e:  # noqa: BLE001
        out["same_as_builtin"] = f"unchecked ({type(e).__name__}: {e})"
    return out


# -- arms -----------------------------------------------------------------------------------------------------
def time_flag(minutes: float) -> str:
    return f"{minutes:g}m" if float(minutes).is_integer() else f"{round(minutes * 60)}s"


def ganforge(words: list[str], log: Path) -> dict[str, Any]:
    """`ganforge WORDS` with ganforge's venv, output to log; command (as a user types it), wall, exit code."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run([str(GANFORGE_PY), "-m", "ganforge", *words[1:]], cwd=ROOT, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    row: dict[str, Any] = {"command": " ".join(shlex.quote(w) for w in words), "log": rel(log),
                           "wall_s": round(time.perf_counter() - t0, 2), "exit_code": rc}
    if rc:
        row["error"] = f"exit {rc}: " + "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
    return row


def run_state(run: Path) -> dict[str, Any]:
    """Steps and training seconds from the newest checkpoint's state.json (what --time limits)."""
    best: tuple[int, dict[str, Any]] | None = None
    for state in run.glob("checkpoints/*/state.json"):
        try:
            d = json.loads(state.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        d = d.get("trainer", d) if isinstance(d, dict) else {}
        if isinstance(d.get("step"), int) and (best is None or d["step"] > best[0]):
            best = (d["step"], d)
    if best is None:
        return {}
    return {"steps": best[0], "train_s": best[1].get("elapsed_s")}


def ganforge_arm(name: str, extra: list[str], minutes: float, n: int) -> dict[str, Any]:
    run = RUNS / name
    shutil.rmtree(run, ignore_errors=True)
    fill = {"time": time_flag(minutes), "run": rel(run), "n": str(n)}
    train_words = [w.format(**fill) for w in TRAIN] + extra
    print(f"[{name}] $ {' '.join(shlex.quote(w) for w in train_words)}", flush=True)
    row: dict[str, Any] = {"train": ganforge(train_words, RUNS / f"{name}_train.log")}
    if "error" in row["train"]:
        row["error"] = "train: " + row["train"]["error"]
        return row
    row["train"].update(run_state(run))
    sample_words = [w.format(**fill) for w in SAMPLE]
    print(f"[{name}] $ {' '.join(sample_words)}", flush=True)
    row["sample"] = ganforge(sample_words, RUNS / f"{name}_sample.log")
    if "error" in row["sample"]:
        row["error"] = "sample: " + row["sample"]["error"]
        return row
    row["samples"] = rel(run / "samples.csv")
    return row


def peer_arm(train_csv: Path, minutes: float, n: int) -> dict[str, Any]:
    out = RUNS / PEER_ARM
    shutil.rmtree(out, ignore_errors=True)
    row = peer_ctgan.fit(train_csv, out, discrete=(), time_s=minutes * 60.0, n=n, seed=0)
    if "error" not in row:
        row["samples"] = rel(out / "samples.csv")
    return row


# -- measuring ------------------------------------------------------------------------------------------------
def load_momenta(path: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path)
    lacking = [c for c in MOMENTA if c not in df.columns]
    if lacking:
        raise ValueError(f"{rel(path)} lacks columns {lacking} (it has {list(df.columns)})")
    return {c: pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64) for c in MOMENTA}


def measure(reference: dict[str, Any], momenta: dict[str, Any], features_csv: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from ganforge.data.eprime import DEFAULT_BEAM_ENERGY
    from ganforge.metrics.tabular import encode_rows, mmd_rows, table_metrics

    fake = event_features(momenta["px"], momenta["py"], momenta["pz"])
    kinds = {c: "continuous" for c in FEATURES}
    t0 = time.perf_counter()
    m = table_metrics(reference, fake, kinds, seed=0, beam_energy=DEFAULT_BEAM_ENERGY,
                      **({"w_threshold": W_THRESHOLD} if W_THRESHOLD is not None else {}))
    finite = np.logical_and.reduce([np.isfinite(fake[c]) for c in FEATURES])
    clean = {c: fake[c][finite] for c in FEATURES}
    mmd: dict[str, Any] = {}
    for tag, cols in (("features", list(FEATURES)), ("momenta", list(MOMENTA))):
        r_rows, f_rows, _ = encode_rows(reference, clean, kinds, cols)
        values = [mmd_rows(r_rows, f_rows, seed=s) for s in range(MMD_SEEDS)]
        mmd[f"mmd2_{tag}"] = float(np.mean(values))
        mmd[f"mmd2_{tag}_sd"] = float(np.std(values, ddof=1))
    pd.DataFrame(clean).to_csv(features_csv, index=False, float_format="%.9g")
    return {"rows": int(len(finite)), "nonfinite_rows": int((~finite).sum()),
            "validity": {k.split("/", 1)[1]: v for k, v in m.items() if k.startswith("validity/")},
            "w1": {c: m[f"w1/{c}"] for c in FEATURES}, "w1_std": {c: m[f"w1_std/{c}"] for c in FEATURES},
            "ks": {c: m[f"ks/{c}"] for c in FEATURES}, "w1_std_mean": m["w1_std_mean"], "ks_mean": m["ks_mean"],
            "corr_frobenius": m.get("corr_frobenius"), "corr_similarity": m.get("corr_similarity"),
            "mmd2_single_subset": m.get("mmd2"), **mmd, "c2st_auc": m.get("c2st_auc"),
            "metrics_s": round(time.perf_counter() - t0, 1)}


def verdicts(arms: dict[str, Any]) -> dict[str, Any]:
    fat, raw, peer = (arms.get(k, {}).get("metrics") for k in ("fatgan", "wgan-gp", PEER_ARM))
    out: dict[str, Any] = {}
    if fat and raw:
        e_fat, e_raw = fat["validity"]["energy"], raw["validity"]["energy"]
        out["energy_validity"] = {"bar": "fatgan's share of events with E' <= E_b is 100% where raw WGAN-GP's is not",
                                  "fatgan": e_fat, "wgan-gp": e_raw, "pass": e_fat == 1.0 and e_raw < 1.0,
                                  "other_rules": {k: {"fatgan": fat["validity"][k], "wgan-gp": raw["validity"][k],
                                                      **({PEER_ARM: peer["validity"][k]} if peer else {})}
                                                  for k in fat["validity"] if k != "energy"}}
    if fat and peer:
        out["mmd"] = {"bar": "fatgan's MMD^2 (9 standardised features, mean of 5 subsets) below the peer's",
                      "fatgan": fat["mmd2_features"], PEER_ARM: peer["mmd2_features"],
                      "pass": fat["mmd2_features"] < peer["mmd2_features"],
                      "momenta_only": {"fatgan": fat["mmd2_momenta"], PEER_ARM: peer["mmd2_momenta"],
                                       "fatgan_lower": fat["mmd2_momenta"] < peer["mmd2_momenta"]}}
        better = [c for c in FEATURES if fat["w1"][c] < peer["w1"][c]]
        need = math.ceil(W1_SHARE * len(FEATURES))
        out["w1"] = {"bar": f"fatgan's W1 below the peer's on >= {W1_SHARE:.0%} of the {len(FEATURES)} features "
                            f"(>= {need})", "fatgan_better_on": better, "count": len(better), "needed": need,
                     "pass": len(better) >= need}
    bars = [v["pass"] for v in out.values()]
    out["all_pass"] = bool(bars) and len(bars) == 3 and all(bars)
    return out


def ganforge_versions() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    v = {"python": sys.version.split()[0], "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    try:
        v["ganforge"] = md.version("ganforge")
    except md.PackageNotFoundError:
        v["ganforge"] = "not installed as a distribution"
    try:
        v["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip()
        v["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                             capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    return v


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per arm in minutes (default: 10)")
    p.add_argument("--quick", action="store_true", help="smoke check: --minutes 1")
    p.add_argument("--arms", default="fatgan,wgan-gp,ctgan", help="arms to run (default: all three)")
    p.add_argument("--n", type=int, default=EVENTS, help=f"events sampled per arm (default: {EVENTS})")
    p.add_argument("--data", default=DATA, choices=[DATA, "builtin:eprime-elastic"],
                   help="the events (default: builtin:eprime; builtin:eprime-elastic adds the elastic peak)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"results JSON (default: {rel(RESULTS)}, or events_elastic.json with the elastic peak)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = RESULTS if args.data == DATA else RESULTS.with_name("events_elastic.json")
    if args.quick:
        args.minutes = 1.0
    unknown = set(args.arms.split(",")) - {*ARMS, PEER_ARM}
    if unknown:
        p.error(f"unknown arms {sorted(unknown)}; choose among {[*ARMS, PEER_ARM]}")
    return args


def main(argv: list[str] | None = None) -> None:
    global TRAIN, W_THRESHOLD
    args = parse_args(argv)
    wanted = args.arms.split(",")
    elastic = args.data != DATA
    if elastic:  # the user's command names the events recipe (it matches builtin:eprime alone)
        TRAIN = [args.data if w == DATA else w for w in TRAIN]
        TRAIN[TRAIN.index("--time"):TRAIN.index("--time")] = ["--recipe", "eprime-fatgan"]
        from ganforge.data.eprime import PROTON_MASS

        W_THRESHOLD = PROTON_MASS
    result: dict[str, Any] = {
        "bench": "events", "issue": "20 item 1",
        "command": " ".join(["bench/events.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"minutes_per_arm": args.minutes, "quick": args.quick, "events": EVENTS, "samples": args.n,
                     "train_seed": TRAIN_SEED, "reference_seed": REFERENCE_SEED, "features": list(FEATURES),
                     "mmd_subsets": MMD_SEEDS, "baseline_overrides": BASELINE_OVERRIDES, "data": args.data,
                     "w_threshold": W_THRESHOLD},
        "machine": machine(), "versions": {"ganforge_side": ganforge_versions()}, "arms": {},
    }
    try:
        if PEER_ARM in wanted:
            result["versions"]["peer_side"] = peer_ctgan.setup()
        data = write_events(elastic)
        train_csv = RUNS / "eprime_train.csv"
        result["data"] = {"train": {k: v for k, v in data["train"].items() if k != "frame"},
                          "reference": {k: v for k, v in data["reference"].items() if k != "frame"},
                          "train_csv_same_as_builtin_eprime": data["same_as_builtin"]}
        ref_m = data["reference"]["frame"]
        reference = event_features(ref_m["px"].to_numpy(), ref_m["py"].to_numpy(), ref_m["pz"].to_numpy())
        import pandas as pd

        pd.DataFrame(reference).to_csv(RUNS / "reference_features.csv", index=False, float_format="%.9g")
        arms: dict[str, Any] = result["arms"]
        for name in wanted:
            print(f"== arm {name}: {args.minutes:g} min", flush=True)
            arms[name] = ganforge_arm(name, ARMS[name], args.minutes, args.n) if name in ARMS else \
                peer_arm(train_csv, args.minutes, args.n)
        floor = {"samples": rel(train_csv), "note": "the training events themselves vs the reference draw"}
        for name, row in [("training_events_floor", floor), *arms.items()]:
            if "error" in row:
                continue
            try:
                feats_csv = RUNS / f"{name}_features.csv"
                row["metrics"] = measure(reference, load_momenta(ROOT / row["samples"]), feats_csv)
                row["sdmetrics_quality"] = peer_ctgan.quality(RUNS / "reference_features.csv", feats_csv,
                                                              {c: "continuous" for c in FEATURES},
                                                              RUNS / f"{name}_quality.json")
            except Exception as e:  # noqa: BLE001
                row["error"] = f"measuring: {type(e).__name__}: {e}"
        result["noise_floor"] = floor
        result["verdict"] = verdicts(arms)
    except Exception as e:  # noqa: BLE001  (recorded: the JSON says what failed)
        result["error"] = f"{type(e).__name__}: {e}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {rel(args.out)}")
    for k, v in result.get("verdict", {}).items():
        print(f"  {k}: {v if isinstance(v, bool) else v.get('pass')}")
    if "error" in result or any("error" in r for r in result["arms"].values()):
        print(result.get("error") or {k: r["error"] for k, r in result["arms"].items() if "error" in r},
              file=sys.stderr)
        raise SystemExit(1)


def entry(run) -> None:
    """Run a bench's main with ganforge's venv: re-exec under .venv's python when ganforge is not importable
    here (bench/tables.py uses it too). (An `import ganforge` probe would shadow ganforge() above.)"""
    import importlib.util

    if importlib.util.find_spec("ganforge") is None:
        if GANFORGE_PY.exists() and Path(sys.prefix).resolve() != GANFORGE_PY.parent.parent.resolve():
            os.execv(str(GANFORGE_PY), [str(GANFORGE_PY), *sys.argv])
        raise SystemExit("ganforge is not installed: run `make setup` (or use .venv/bin/python)")
    run()


if __name__ == "__main__":
    entry(main)
