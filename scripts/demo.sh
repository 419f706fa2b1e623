#!/usr/bin/env bash
# The main job on a built-in dataset: DCGAN on Fashion-MNIST for a few CPU minutes, then samples,
# metrics and an HTML report.
# Re-running continues (or just re-samples) the same run: nothing is thrown away.
set -euo pipefail
cd "$(dirname "$0")/.."
GANFORGE=${VENV:-.venv}/bin/ganforge
OUT=${DEMO_OUT:-runs/demo}
resume=()
[ -f "$OUT/config.json" ] && resume=(--resume)
"$GANFORGE" train --data builtin:fashion-mnist --family dcgan --config configs/demo-fashion.yaml --out "$OUT" "${resume[@]}"
"$GANFORGE" sample --ckpt "$OUT" --n 64 --seed 0 --out "$OUT/grid.png"
"$GANFORGE" sample --ckpt "$OUT" --n 8 --interpolate 10 --seed 1 --out "$OUT/interpolation.png"
# FID/KID/precision-recall/classifier score against the test split, with the shipped `fashion` features
"$GANFORGE" evaluate --ckpt "$OUT" --metrics fid,kid,pr,is --n 5000 --features fashion
"$GANFORGE" report "$OUT"
cat <<MSG

demo finished. Results:
  sample grid            $OUT/grid.png   (training grids: $OUT/samples/)
  interpolation strips   $OUT/interpolation.png
  metrics (JSON)         $(ls "$OUT"/eval/*.json | tail -n 1)
  report (one HTML page) $OUT/report.html
  training log           $OUT/log.jsonl
  checkpoint             $(ls -d "$OUT"/checkpoints/step_* | tail -n 1)
  TensorBoard            .venv/bin/tensorboard --logdir $OUT/tb
MSG
