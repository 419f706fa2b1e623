"""`builtin:spoken-digits`: the ten English digit words as 1-second 16 kHz mono clips, like SC09 (the
"zero".."nine" subset of Speech Commands that WaveGAN was shown on), but SYNTHETIC: spoken here by the
espeak-ng speech synthesiser (Debian package `espeak-ng`), not recorded from people. It sounds robotic, and a
model trained on it learns espeak-ng's voices, not human speech.

Voices: 5 English accents (en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-029) x 24 espeak-ng voice variants
(m1-m8, f1-f5, klatt-klatt4, grandpa, grandma, david, john, linda, steph, paul) = 120 voices; each says each
digit 3 times at a random speed (130-190 words/min) and pitch (30-70), so 360 clips per digit, 3,600 in all.
Each clip: espeak-ng's 22,050 Hz output resampled to 16 kHz, scaled to a peak of 0.9 x a random gain in
[0.5, 1], white noise added at a random 30-45 dB signal-to-noise ratio, and the word centred in 16,384 samples
(data.audio.fit_clip). Every random choice comes from the clip's index, so the set is the same on every
machine with the same espeak-ng version (recorded in the cache).
Split by voice: the 4 variants m4, f3, klatt2 and linda (20 voices, 600 clips) are the test split; no test voice
is heard in training.

Built once (about a minute on 2 cores) and cached under the ganforge cache folder ($GANFORGE_CACHE/audio).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..cache import cache_root
from .audio import CLIP_SAMPLES, SAMPLE_RATE, audio_spec, fit_clip, read_audio, resample, to_int16
from .store import TensorData

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "klatt4", "grandpa", "grandma", "david", "john", "linda", "steph", "paul")
TEST_VARIANTS = ("m4", "f3", "klatt2", "linda")
REPEATS = 3
FORMAT = 1  # bump when the recipe above changes


def espeak_version() -> str:
    """espeak-ng's version number (e.g. "1.51"); ValueError naming the fix when it is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ValueError("builtin:spoken-digits is spoken by espeak-ng, which is not installed: apt-get install "
                         "espeak-ng (Debian/Ubuntu), or give --data a folder of .wav files")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"text-to-speech:\s*(\S+)", out)
    return found.group(1) if found else (out.strip().splitlines() or ["unknown"])[0]


def plan(repeats: int = REPEATS) -> list[dict]:
    """Every clip's settings, in a fixed order (digit-major), with its split."""
    rows = []
    for d, word in enumerate(DIGITS):
        for accent in ACCENTS:
            for variant in VARIANTS:
                for r in range(repeats):
                    rows.append({"digit": d, "word": word, "voice": f"{accent}+{variant}", "repeat": r,
                                 "test": variant in TEST_VARIANTS})
    return rows


def speak(row: dict, index: int, sample_rate: int = SAMPLE_RATE, length: int = CLIP_SAMPLES) -> np.ndarray:
    """One clip (int16, (length,)) of the plan's row `index`."""
    rng = np.random.default_rng(1_000_003 * FORMAT + index)
    speed, pitch = int(rng.integers(130, 191)), int(rng.integers(30, 71))
    gain, snr_db = float(rng.uniform(0.5, 1.0)), float(rng.uniform(30.0, 45.0))
    cmd = ["espeak-ng", "-v", row["voice"], "-s", str(speed), "-p", str(pitch), "--stdout", row["word"]]
    out = subprocess.run(cmd, capture_output=True, check=False)
    if out.returncode or not out.stdout:
        raise RuntimeError(f"espeak-ng failed on {row['voice']} '{row['word']}': {out.stderr.decode()[:200]}")
    x, rate = read_audio(out.stdout)
    v = fit_clip(resample(x.mean(axis=1), rate, sample_rate), length)
    peak = float(np.abs(v).max())
    if peak > 0:
        v = v * (0.9 * gain / peak)
        loud = np.abs(v) > 0.01 * 0.9 * gain
        rms = float(np.sqrt(np.mean(v[loud] ** 2)))  # of the word, not of the silence around it
        v = v + rng.normal(0.0, rms * 10 ** (-snr_db / 20.0), length).astype(np.float32)
    return to_int16(v)


def build(path: Path, repeats: int = REPEATS, workers: int = 0, quiet: bool = False) -> None:
    """Synthesise the whole set into `path` (.npz: x int16 (N, L), y, test mask, voices, espeak-ng version)."""
    rows = plan(repeats)
    version = espeak_version()
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    if not quiet:
        print(f"builtin:spoken-digits: synthesising {len(rows)} clips with {version} (once; cached in {path.parent})",
              flush=True)
    with ThreadPoolExecutor(workers) as pool:  # espeak-ng runs as a subprocess: threads are enough
        clips = list(pool.map(lambda a: speak(a[1], a[0]), enumerate(rows)))
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, x=np.stack(clips), y=np.array([r["digit"] for r in rows], dtype=np.int64),
                     test=np.array([r["test"] for r in rows]), voices=np.array([r["voice"] for r in rows]),
                     meta=np.array(json.dumps({"format": FORMAT, "espeak": version, "repeats": repeats})))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cache_path(repeats: int = REPEATS) -> Path:
    """Where the set is cached: keyed by the recipe (FORMAT, the voices, repeats, rate, length), not by the
    espeak-ng version (recorded inside), so a built set loads on a machine without espeak-ng."""
    key = hashlib.sha256(json.dumps([FORMAT, DIGITS, ACCENTS, VARIANTS, TEST_VARIANTS, repeats, SAMPLE_RATE,
                                     CLIP_SAMPLES]).encode())
    return cache_root() / "audio" / f"spoken-digits-{key.hexdigest()[:16]}.npz"


def load_spoken_digits(size=None, channels=None, split: str = "train", repeats: int = REPEATS) -> TensorData:
    if size is not None or channels is not None:
        raise ValueError("builtin:spoken-digits is audio: --size and --channels apply to images; drop them")
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got '{split}'")
    path = cache_path(repeats)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path, repeats)
    with np.load(path) as z:
        keep = z["test"] if split == "test" else ~z["test"]
        x, y = z["x"][keep], z["y"][keep]
    spec = audio_spec(len(DIGITS), DIGITS, "spoken-digits", SAMPLE_RATE, CLIP_SAMPLES)
    return TensorData(spec=spec, x=torch.from_numpy(x[:, None, :].copy()), y=torch.from_numpy(y.copy()),
                      source=f"builtin:spoken-digits ({split}; synthesised with espeak-ng)")
