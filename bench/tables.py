"""Real tables (issue 20, acceptance item 2): ganforge's `ctgan` family vs PyPI's ctgan on scikit-learn's wine,
breast-cancer and diabetes tables, equal epochs, several seeds each: per-column metrics, classifier AUC,
machine-learning efficacy, sdmetrics' quality score, and wall time per epoch.

Data: each table as CSV under bench/results/runs/tables/NAME/ (written here from scikit-learn, no download) with
a --columns file marking its label `target` (wine: 3 cultivars, categorical; breast-cancer: malignant/benign,
categorical; diabetes: disease progression, continuous); the other columns keep the types ganforge infers
(`read_table`), and the peer is told the same categorical columns as `discrete_columns`. Both generators train on
the same 70% of the rows, the split `ganforge.metrics.tabular.ml_efficacy(seed=0)` makes; the other 30% are the
held-out test rows of the efficacy score (train on synthetic, test on real, vs train on the real 70%), so neither
generator has seen them. The distribution metrics compare each generator's samples (as many rows as it trained
on) with the whole real table.

Arms, per table and seed, alternating so that drift on a shared machine hits both alike:
  ganforge  `ganforge train --data TRAIN.csv --columns COLUMNS.yaml --family ctgan --batch-size 500 --steps S
            --seed K --out RUN`, then `ganforge sample --ckpt RUN --n ROWS --seed K --out RUN/samples.csv`.
  ctgan     bench/peer_ctgan.py: ctgan 0.12.1's defaults (batch 500, pac 10), --epochs E, seed K, 2 threads.
Equal epochs: both define an epoch as max(rows // batch, 1) optimiser steps of one batch (ctgan's fit loop; the
ctgan family's docstring), so S = E * max(rows // 500, 1). These tables have fewer rows than a batch, so an
epoch is one step of 500 rows in both (the peer draws them with replacement; ganforge's loader runs a batch larger
than a table on through the next epochs' permutations, and with categorical columns both draw the real rows by
training-by-sampling). (ceil(E * rows / batch), the rows-seen count,
would give ganforge fewer steps than the peer takes for the same E: recorded as `steps_by_rows_seen`, not used.)
Default E = 300, ctgan's own default, and 10 seeds: about 8 minutes per table on 2 cores. (Three seeds were too
few: wine's correlation distance read 4.83 vs 4.56 over seeds 0-2, then 4.53 vs 4.52 over seeds 3-10.)

Speed: per-epoch time = training seconds / E. ganforge's training seconds are its trainer's (the newest
checkpoint's elapsed_s, what --time counts), the peer's its epoch loop (peer_ctgan.py times every epoch); data
preparation (both fit a VGM per continuous column) and start-up are reported apart, as are whole-process wall
times. Bar: the peer's per-epoch time over ganforge's, >= 2 on every table as the median over every timing pair:
the seed runs' pairs and --speed-rounds (5) more training-only pairs (seeds 100, ...; the order alternating),
since the machine's speed drifts by up to half over a minute and three pairs alone land either side of the bar.

Quality: table_metrics' w1_std_mean, ks_mean, tvd_mean (lower is better), corr_frobenius, mmd2, c2st_auc (lower),
efficacy_synthetic (macro-F1 or R^2; higher) and sdmetrics' QualityReport score (higher), mean and standard
deviation over seeds. ganforge is "within seed noise or better" on a metric when its mean is no worse than the
peer's by more than 2 standard errors of the difference, sqrt(sd_g^2 / k + sd_p^2 / k) (with one seed: no
worse at all). Bar: every metric, every table.

    .venv/bin/python bench/tables.py                          # 3 tables x 10 seeds x 300 epochs (~30 min)
    .venv/bin/python bench/tables.py --epochs 100 --seeds 2 --only wine
    .venv/bin/python bench/tables.py --quick                  # smoke: 5 epochs, 1 seed, wine only

Results: bench/results/tables.json (no absolute paths). Runs and samples under bench/results/runs/tables/.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import peer_ctgan  # noqa: E402  (stdlib-only at import)
from events import entry, ganforge, ganforge_versions, run_state  # noqa: E402
from peer_ctgan import ROOT, machine, rel  # noqa: E402

RUNS = BENCH / "results" / "runs" / "tables"
RESULTS = BENCH / "results" / "tables.json"

# --- the tables and the ganforge commands (fix here if the CLI's wiring changes) ------------------------------
TABLES = {"wine": ("load_wine", "categorical"), "breast-cancer": ("load_breast_cancer", "categorical"),
          "diabetes": ("load_diabetes", "continuous")}
LABEL = "target"
BATCH = 500
TRAIN = ["ganforge", "train", "--data", "{csv}", "--columns", "{columns}", "--family", "ctgan",
         "--batch-size", "{batch}", "--steps", "{steps}", "--seed", "{seed}", "--out", "{run}"]
SAMPLE = ["ganforge", "sample", "--ckpt", "{run}", "--n", "{n}", "--seed", "{seed}", "--out", "{run}/samples.csv"]

LOWER_BETTER = ("w1_std_mean", "ks_mean", "tvd_mean", "corr_frobenius", "mmd2", "c2st_auc")
HIGHER_BETTER = ("efficacy_synthetic", "sdmetrics_score")
SPEED_BAR = 2.0
CONTINUOUS = {"continuous", "integer", "datetime", "float", "numeric"}


# -- data -----------------------------------------------------------------------------------------------------
def efficacy_split(n: int) -> tuple[Any, Any]:
    """(train, test) row indices exactly as ganforge.metrics.tabular.ml_efficacy(seed=0) splits n rows."""
    import numpy as np

    from ganforge.metrics.tabular import EFFICACY_TEST_SHARE

    order = np.random.default_rng(0).permutation(n)
    n_test = int(round(n * EFFICACY_TEST_SHARE))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def write_table(name: str) -> dict[str, Any]:
    """NAME/full.csv, NAME/train.csv (the 70% both generators see), NAME/columns.yaml; kinds per column."""
    import sklearn.datasets
    import yaml

    loader, label_kind = TABLES[name]
    df = getattr(sklearn.datasets, loader)(as_frame=True).frame
    folder = RUNS / name
    folder.mkdir(parents=True, exist_ok=True)
    full, train_csv, columns = folder / "full.csv", folder / "train.csv", folder / "columns.yaml"
    df.to_csv(full, index=False, float_format="%.17g")
    train_idx, test_idx = efficacy_split(len(df))
    df.iloc[train_idx].to_csv(train_csv, index=False, float_format="%.17g")
    columns.write_text(yaml.safe_dump({LABEL: {"type": label_kind, "label": True}}))
    try:  # the types ganforge gives the columns (the label's from --columns); the peer gets the same
        from ganforge.data.table import read_table

        table = read_table(train_csv, columns=str(columns))
        kinds = {c: ("continuous" if i.kind in CONTINUOUS else "categorical") for c, i in table.info.items()}
        typed_by = "ganforge.data.table.read_table with the --columns file"
    except Exception as e:  # noqa: BLE001
        kinds = {c: "continuous" for c in df.columns} | {LABEL: label_kind}
        typed_by = f"fallback: label from the --columns file, others continuous ({type(e).__name__}: {e})"
    return {"source": f"sklearn.datasets.{loader}", "rows": len(df), "train_rows": len(train_idx),
            "test_rows": len(test_idx), "columns": list(df.columns), "label": LABEL, "label_kind": label_kind,
            "kinds": kinds, "typed_by": typed_by, "full_csv": rel(full), "train_csv": rel(train_csv),
            "columns_file": rel(columns)}


def read_samples(path: Path, kinds: dict[str, str]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path)
    lacking = [c for c in kinds if c not in df.columns]
    if lacking:
        raise ValueError(f"{rel(path)} lacks columns {lacking} (it has {list(df.columns)})")
    return {c: (peer_ctgan._categorical_text(df[c]) if k == "categorical"
                else pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)) for c, k in kinds.items()}


# -- arms -----------------------------------------------------------------------------------------------------
def run_batch_size(run: Path) -> Any:
    try:
        cfg = json.loads((run / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for d in (cfg, cfg.get("config", {})):
        if isinstance(d, dict) and isinstance(d.get("train"), dict) and "batch_size" in d["train"]:
            return d["train"]["batch_size"]
    return None


def ganforge_arm(table: dict[str, Any], folder: Path, epochs: int, steps: int, seed: int) -> dict[str, Any]:
    run = folder / f"ganforge_seed{seed}"
    shutil.rmtree(run, ignore_errors=True)
    fill = {"csv": table["train_csv"], "columns": table["columns_file"], "batch": str(BATCH), "steps": str(steps),
            "seed": str(seed), "run": rel(run), "n": str(table["train_rows"])}
    words = [w.format(**fill) for w in TRAIN]
    print(f"  $ {' '.join(shlex.quote(w) for w in words)}", flush=True)
    row: dict[str, Any] = {"train": ganforge(words, folder / f"ganforge_seed{seed}_train.log")}
    if "error" in row["train"]:
        row["error"] = "train: " + row["train"]["error"]
        return row
    state = run_state(run)
    row["train"].update(state)
    row["batch_size"] = run_batch_size(run)
    if state.get("train_s"):
        row["train_s"] = state["train_s"]
        row["epoch_s"] = state["train_s"] / epochs
    words = [w.format(**fill) for w in SAMPLE]
    print(f"  $ {' '.join(words)}", flush=True)
    row["sample"] = ganforge(words, folder / f"ganforge_seed{seed}_sample.log")
    if "error" in row["sample"]:
        row["error"] = "sample: " + row["sample"]["error"]
        return row
    row["samples"] = rel(run / "samples.csv")
    return row


def peer_arm(table: dict[str, Any], folder: Path, epochs: int, seed: int) -> dict[str, Any]:
    out = folder / f"ctgan_seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    discrete = [c for c, k in table["kinds"].items() if k == "categorical"]
    row = peer_ctgan.fit(ROOT / table["train_csv"], out, discrete=discrete, epochs=epochs, n=table["train_rows"],
                         seed=seed, batch_size=BATCH)
    if "error" not in row:
        row["samples"] = rel(out / "samples.csv")
        row["epoch_s"] = row["train_s"] / epochs
    return row


def speed_rounds(table: dict[str, Any], folder: Path, epochs: int, steps: int, rounds: int) -> list[dict[str, Any]]:
    """`rounds` more timing pairs, training only (no metrics): the same two commands as the seed runs (seeds
    100, 101, ...), the order alternating every round. The machine's speed drifts by up to half over a minute
    (the same 300 ganforge steps took 3.0 to 4.4 s within ten minutes), so a median over three pairs alone
    swings either side of the bar; every pair adds a ratio measured seconds apart."""
    pairs = []
    for k in range(rounds):
        seed = 100 + k
        print(f"== {folder.name} speed round {k + 1}/{rounds}", flush=True)
        order = ("ganforge", "ctgan") if k % 2 == 0 else ("ctgan", "ganforge")
        got: dict[str, Any] = {}
        for arm in order:
            if arm == "ganforge":
                run = folder / f"speed_round{k}"
                shutil.rmtree(run, ignore_errors=True)
                fill = {"csv": table["train_csv"], "columns": table["columns_file"], "batch": str(BATCH),
                        "steps": str(steps), "seed": str(seed), "run": rel(run)}
                words = [w.format(**fill) for w in TRAIN]
                print(f"  $ {' '.join(shlex.quote(w) for w in words)}", flush=True)
                row = ganforge(words, folder / f"speed_round{k}_train.log")
                state = run_state(run) if "error" not in row else {}
                got[arm] = state["train_s"] / epochs if state.get("train_s") else None
                if "error" in row or got[arm] is None:
                    got[f"{arm}_error"] = row.get("error", "no training time in the run's checkpoint")
                shutil.rmtree(run, ignore_errors=True)
            else:
                out = folder / f"speed_round{k}_ctgan"
                row = peer_ctgan.fit(ROOT / table["train_csv"], out, epochs=epochs, n=10, seed=seed, batch_size=BATCH,
                                     discrete=[c for c, kd in table["kinds"].items() if kd == "categorical"])
                got[arm] = row["train_s"] / epochs if "error" not in row else None
                if "error" in row:
                    got[f"{arm}_error"] = row["error"]
        pair = {"round": k, "seed": seed, "order": list(order), "ganforge_epoch_s": got.get("ganforge"),
                "ctgan_epoch_s": got.get("ctgan")}
        errors = [f"{arm}: {got[f'{arm}_error']}" for arm in order if f"{arm}_error" in got]
        if errors:
            pair["error"] = "; ".join(errors)
        pairs.append(pair)
    return pairs


def measure(table: dict[str, Any], row: dict[str, Any], tag: str, folder: Path) -> None:
    """table_metrics and the sdmetrics score of one arm's samples against the whole real table (in place)."""
    from ganforge.metrics.tabular import table_metrics

    kinds = table["kinds"]
    real = read_samples(ROOT / table["full_csv"], kinds)
    fake = read_samples(ROOT / row["samples"], kinds)
    row["metrics"] = table_metrics(real, fake, kinds, label=LABEL, seed=0)
    q = peer_ctgan.quality(ROOT / table["full_csv"], ROOT / row["samples"], kinds, folder / f"{tag}_quality.json")
    row["sdmetrics_quality"] = q
    if "error" not in q:
        row["metrics"]["sdmetrics_score"] = q["score"]


# -- verdicts -------------------------------------------------------------------------------------------------
def stats(values: list[float]) -> dict[str, Any]:
    import numpy as np

    v = [x for x in values if x is not None and math.isfinite(x)]
    return {"mean": float(np.mean(v)) if v else None, "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None,
            "n": len(v), "values": values}


def compare(gf_rows: list[dict[str, Any]], peer_rows: list[dict[str, Any]],
            rounds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    quality: dict[str, Any] = {}
    for key in (*LOWER_BETTER, *HIGHER_BETTER):
        g = stats([r["metrics"].get(key) for r in gf_rows if "metrics" in r])
        p = stats([r["metrics"].get(key) for r in peer_rows if "metrics" in r])
        if g["mean"] is None or p["mean"] is None:
            continue
        k = min(g["n"], p["n"])
        se = math.sqrt(((g["sd"] or 0.0) ** 2 + (p["sd"] or 0.0) ** 2) / k) if k > 1 else 0.0
        worse_by = (g["mean"] - p["mean"]) if key in LOWER_BETTER else (p["mean"] - g["mean"])
        quality[key] = {"ganforge": g, "ctgan": p, "better": "lower" if key in LOWER_BETTER else "higher",
                        "ganforge_worse_by": worse_by, "two_se": 2 * se, "within_noise_or_better": worse_by <= 2 * se}
    gf_epoch = stats([r.get("epoch_s") for r in gf_rows])
    peer_epoch = stats([r.get("epoch_s") for r in peer_rows])
    ratios = [p["epoch_s"] / g["epoch_s"] for g, p in zip(gf_rows, peer_rows) if g.get("epoch_s") and p.get("epoch_s")]
    import numpy as np

    speed = {"ganforge_epoch_s": gf_epoch, "ctgan_epoch_s": peer_epoch,
             "ratio_per_seed": ratios, "ratio_median": float(np.median(ratios)) if ratios else None,
             "ganforge_process_wall_s": stats([r.get("train", {}).get("wall_s") for r in gf_rows]),
             "ctgan_process_wall_s": stats([r.get("process_wall_s") for r in peer_rows]),
             "ctgan_transformer_s": stats([r.get("transformer_s") for r in peer_rows])}
    round_ratios = [r["ctgan_epoch_s"] / r["ganforge_epoch_s"] for r in rounds or []
                    if r.get("ganforge_epoch_s") and r.get("ctgan_epoch_s")]
    every = ratios + round_ratios
    speed.update({"rounds": rounds or [], "ratio_per_round": round_ratios,
                  "ratio_median_all_pairs": float(np.median(every)) if every else None, "pairs": len(every)})
    # the bar reads every timing pair: the seed runs' and the speed rounds'
    speed["pass"] = bool(every) and speed["ratio_median_all_pairs"] >= SPEED_BAR
    return {"quality": quality, "quality_pass": bool(quality) and all(v["within_noise_or_better"]
                                                                      for v in quality.values()),
            "speed": speed}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=300, help="epochs for both (default: 300, ctgan's default)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per arm and table (default: 10)")
    p.add_argument("--only", default=",".join(TABLES), help=f"tables (default: {','.join(TABLES)})")
    p.add_argument("--speed-rounds", type=int, default=5,
                   help="timing-only pairs per table after the seed runs (default: 5; the speed bar reads all pairs)")
    p.add_argument("--quick", action="store_true", help="smoke check: --epochs 5 --seeds 1 --only wine")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default: {rel(RESULTS)})")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.only, args.speed_rounds = 5, 1, "wine", 1
    unknown = set(args.only.split(",")) - set(TABLES)
    if unknown:
        p.error(f"unknown tables {sorted(unknown)}; choose among {list(TABLES)}")
    if args.epochs < 1 or args.seeds < 1 or args.speed_rounds < 0:
        p.error("--epochs and --seeds must be >= 1, --speed-rounds >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "bench": "tables", "issue": "20 item 2",
        "command": " ".join(["bench/tables.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"epochs": args.epochs, "seeds": args.seeds, "batch_size": BATCH, "quick": args.quick,
                     "tables": args.only.split(","), "speed_bar": SPEED_BAR,
                     "speed_rounds": args.speed_rounds,
                     "quality_rule": "ganforge mean no worse than the peer's by more than 2 SE of the difference"},
        "machine": machine(), "versions": {"ganforge_side": ganforge_versions()}, "tables": {},
    }
    try:
        result["versions"]["peer_side"] = peer_ctgan.setup()
        for name in args.only.split(","):
            table = write_table(name)
            folder = RUNS / name
            spe = max(table["train_rows"] // BATCH, 1)
            steps = args.epochs * spe
            entry: dict[str, Any] = {"data": table, "steps_per_epoch": spe, "steps": steps,
                                     "steps_by_rows_seen": math.ceil(args.epochs * table["train_rows"] / BATCH),
                                     "ganforge": [], "ctgan": []}
            result["tables"][name] = entry
            for seed in range(args.seeds):
                print(f"== {name} seed {seed}: {args.epochs} epochs ({steps} steps)", flush=True)
                order = ("ganforge", "ctgan") if seed % 2 == 0 else ("ctgan", "ganforge")
                rows = {}
                for arm in order:
                    rows[arm] = ganforge_arm(table, folder, args.epochs, steps, seed) if arm == "ganforge" else \
                        peer_arm(table, folder, args.epochs, seed)
                for arm in ("ganforge", "ctgan"):
                    row = rows[arm]
                    row["seed"] = seed
                    if "error" not in row:
                        try:
                            measure(table, row, f"{arm}_seed{seed}", folder)
                        except Exception as e:  # noqa: BLE001
                            row["error"] = f"measuring: {type(e).__name__}: {e}"
                    entry[arm].append(row)
            entry["speed_rounds"] = speed_rounds(table, folder, args.epochs, steps, args.speed_rounds)
            entry["comparison"] = compare(entry["ganforge"], entry["ctgan"], entry["speed_rounds"])
        comps = [t["comparison"] for t in result["tables"].values()]
        result["verdict"] = {"quality_within_noise_or_better_all_tables": all(c["quality_pass"] for c in comps),
                             "speed_2x_all_tables": all(c["speed"]["pass"] for c in comps),
                             "speed_ratio_median": {n: t["comparison"]["speed"]["ratio_median_all_pairs"]
                                                    for n, t in result["tables"].items()}}
    except Exception as e:  # noqa: BLE001  (recorded: the JSON says what failed)
        result["error"] = f"{type(e).__name__}: {e}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {rel(args.out)}")
    print(json.dumps(result.get("verdict", {}), indent=1))
    errors = {f"{n}/{arm}/seed{r.get('seed')}": r["error"] for n, t in result["tables"].items()
              for arm in ("ganforge", "ctgan") for r in t.get(arm, []) if "error" in r}
    errors |= {f"{n}/speed_round{r['round']}": r["error"] for n, t in result["tables"].items()
               for r in t.get("speed_rounds", []) if "error" in r}
    if "error" in result or errors:
        print(result.get("error") or errors, file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    entry(main)
