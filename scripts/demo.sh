#!/usr/bin/env bash
# The main job on a built-in dataset: DCGAN on Fashion-MNIST for a few CPU minutes, then samples,
# metrics, an HTML report, and exports (ONNX, static site, AWS Lambda package).
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
# the generator leaves ganforge: ONNX (checked against PyTorch), a static site, an AWS Lambda package
"$GANFORGE" export --ckpt "$OUT" --onnx "$OUT/export/generator.onnx" --lambda "$OUT/export/lambda" --no-vendor
site_line="  static site            (skipped: npm is not installed; apt-get install npm)"
if command -v npm >/dev/null; then
  "$GANFORGE" export --ckpt "$OUT" --site "$OUT/export/site"
  site_line="  static site            $OUT/export/site/index.html   (python -m http.server -d $OUT/export/site 8080)"
fi
cat <<MSG

demo finished. Results:
  sample grid            $OUT/grid.png   (training grids: $OUT/samples/)
  interpolation strips   $OUT/interpolation.png
  metrics (JSON)         $(ls "$OUT"/eval/*.json | tail -n 1)
  report (one HTML page) $OUT/report.html
  training log           $OUT/log.jsonl
  checkpoint             $(ls -d "$OUT"/checkpoints/step_* | tail -n 1)
  ONNX generator         $OUT/export/generator.onnx   (model card: $OUT/export/generator.card.md)
$site_line
  AWS Lambda package     $OUT/export/lambda/   (deploy: $OUT/export/lambda/README.md)
  HTTP API + playground  .venv/bin/ganforge serve --ckpt $OUT   (then open http://127.0.0.1:8000/)
  TensorBoard            .venv/bin/tensorboard --logdir $OUT/tb
MSG
