"""Audio clips: sound files -> one int16 tensor (N, 1, L) at one sample rate, and clips back to WAV files.

The audio data kind (`DataSpec(kind="audio", shape=(1, L), sample_rate=SR)`): every clip is mono, `L` samples
at `SR` Hz (16,384 at 16 kHz by default, WaveGAN's ~1 s), stored as int16 (x = round(32767 * v) for v in
[-1, 1]) and given to models as float32 in [-1, 1] per batch (TensorData.to_float).

Files (`load_audio_folder`): .wav, .flac, .ogg read with soundfile (libsndfile); several channels are averaged
to mono, other sample rates resampled with a polyphase filter (scipy.signal.resample_poly), and each clip fitted
to L samples by `fit_clip`: the sound (samples above 1% of the clip's peak) is cut out, centred, and padded with
silence or, when longer than L, its middle L samples are kept. Layout as for images: `root/*.wav` unlabelled,
`root/<class>/**/*.wav` labelled by sorted sub-folder names. Unreadable files are skipped and named in one
warning. WAV output (`write_wav`) is 16-bit PCM through the standard library, so int16 clips round-trip
bit-exactly.
"""

from __future__ import annotations

import io
import math
import warnings
import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .spec import DataSpec
from .store import TensorData

SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_384
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
INT16_SCALE = 32767.0
SILENCE = 0.01  # a sample is sound when |v| > SILENCE x the clip's peak


class SkippedAudioWarning(UserWarning):
    """Some files in an audio folder could not be read and were left out."""


def read_audio(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """(float32 (samples, channels) in [-1, 1], sample rate) of a sound file or its bytes. Raises ValueError (or
    soundfile's errors, which are RuntimeError/OSError subclasses) for unreadable input."""
    import soundfile as sf

    data = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    x, sr = sf.read(data, dtype="float32", always_2d=True)
    if x.size == 0:
        raise ValueError("the file holds no samples")
    return x, int(sr)


def to_mono(x: np.ndarray) -> np.ndarray:
    """(samples, channels) -> (samples,) by averaging the channels."""
    return x.mean(axis=1) if x.ndim == 2 else x


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """x (samples,) from rate_in to rate_out Hz, polyphase (scipy.signal.resample_poly, its Kaiser window)."""
    if rate_in == rate_out:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(int(rate_in), int(rate_out))
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def fit_clip(x: np.ndarray, length: int) -> np.ndarray:
    """x (samples,) -> (length,): the sound (from the first to the last sample above SILENCE x peak) centred, padded
    with zeros, or its middle `length` samples when it is longer. A silent clip gives zeros."""
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0:
        loud = np.flatnonzero(np.abs(x) > SILENCE * peak)
        x = x[loud[0]:loud[-1] + 1]
    else:
        x = x[:0]
    out = np.zeros(length, dtype=np.float32)
    if len(x) >= length:
        start = (len(x) - length) // 2
        out[:] = x[start:start + length]
    else:
        start = (length - len(x)) // 2
        out[start:start + len(x)] = x
    return out


def to_int16(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float samples in [-1, 1] (clipped) -> int16, round(32767 v)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == np.int16:
        return a
    return np.round(np.clip(a.astype(np.float64), -1.0, 1.0) * INT16_SCALE).astype(np.int16)


def wav_bytes(x: np.ndarray | torch.Tensor, sample_rate: int) -> bytes:
    """A mono clip (float in [-1, 1], or int16; any shape holding one channel) as 16-bit PCM WAV bytes."""
    pcm = to_int16(x).reshape(-1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, x: np.ndarray | torch.Tensor, sample_rate: int) -> Path:
    path = Path(path)
    path.write_bytes(wav_bytes(x, sample_rate))
    return path


def read_wav_int16(path: str | Path) -> tuple[np.ndarray, int]:
    """The int16 samples and rate of a 16-bit mono PCM WAV (what write_wav writes), exactly."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: not a 16-bit mono WAV")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16), w.getframerate()


def prepare(x: np.ndarray, rate: int, sample_rate: int, length: int) -> np.ndarray:
    """A decoded file (samples, channels) at `rate` -> an int16 clip (length,) at sample_rate."""
    return to_int16(fit_clip(resample(to_mono(x), rate, sample_rate), length))


def audio_spec(n_classes: int, class_names: tuple[str, ...], name: str, sample_rate: int, length: int) -> DataSpec:
    return DataSpec(kind="audio", shape=(1, int(length)), n_classes=n_classes, class_names=class_names, name=name,
                    sample_rate=int(sample_rate))


def is_audio_folder(root: Path) -> bool:
    """Whether a folder holds sound files and no images (then --data reads it as audio clips)."""
    from .images import IMAGE_SUFFIXES

    sound = image = False
    for p in root.rglob("*"):
        suffix = p.suffix.lower()
        sound |= suffix in AUDIO_SUFFIXES
        image |= suffix in IMAGE_SUFFIXES
        if image:
            return False
    return sound


def load_audio_folder(root: str | Path, sample_rate: int = SAMPLE_RATE, length: int = CLIP_SAMPLES,
                      quiet: bool = False) -> TensorData:
    """A folder of sound files -> TensorData with int16 x (N, 1, length); see the module docstring."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"audio folder '{root}' does not exist or is not a folder")
    if sample_rate < 1000 or length < 256:
        raise ValueError(f"sample rate must be >= 1000 Hz and clip length >= 256 samples, got {sample_rate}, {length}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"audio folder '{root}' has no .wav, .flac or .ogg files")
    rels = [p.relative_to(root) for p in files]
    nested = [r for r in rels if len(r.parts) > 1]
    if nested and len(nested) != len(rels):
        loose = [str(r) for r in rels if len(r.parts) == 1]
        raise ValueError(f"audio folder '{root}' has class sub-folders and also {len(loose)} files directly inside it "
                         f"({', '.join(loose[:5])}); move those into a class sub-folder")
    class_names = tuple(sorted({r.parts[0] for r in nested}))
    clips, labels, skipped = [], [], []
    for p, r in zip(files, rels):
        try:
            x, rate = read_audio(p)
            clips.append(prepare(x, rate, sample_rate, length))
        except (RuntimeError, OSError, ValueError, EOFError) as e:  # soundfile.LibsndfileError is a RuntimeError
            skipped.append(f"{r} ({type(e).__name__}: {str(e)[:80]})")
            continue
        if class_names:
            labels.append(class_names.index(r.parts[0]))
    if not clips:
        raise ValueError(f"audio folder '{root}' has 0 readable files ({len(skipped)} skipped: "
                         f"{'; '.join(skipped[:5])})")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable audio files in '{root}': {'; '.join(skipped[:10])}",
                      SkippedAudioWarning, stacklevel=2)
    x = torch.from_numpy(np.stack(clips)[:, None, :])
    y = torch.tensor(labels, dtype=torch.int64) if class_names else None
    spec = audio_spec(len(class_names), class_names, root.resolve().name, sample_rate, length)
    return TensorData(spec=spec, x=x, y=y, skipped=tuple(skipped), source=str(root))


def describe_file(path: Path) -> dict[str, Any]:
    """What `ganforge data inspect` shows for one sound file: duration, rate, channels, format."""
    import soundfile as sf

    info = sf.info(str(path))
    return {"duration_s": round(info.duration, 3), "sample_rate": info.samplerate, "channels": info.channels,
            "format": f"{info.format} {info.subtype}"}


# -- spectrograms -------------------------------------------------------------------------------------------------
N_FFT, HOP = 256, 128
LOG_FLOOR, LOG_CEIL = -12.0, 4.0  # the range of log |STFT| drawn (a Hann-windowed 256-point frame of +-1 peaks ~4.8)


def log_spectrogram(x: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP, floor: float = 1e-6) -> torch.Tensor:
    """Clips (N, 1, L) or (N, L) -> log-magnitude spectrograms (N, n_fft // 2 + 1, frames): log(|STFT| + floor),
    Hann window, centred frames."""
    x = x.reshape(x.shape[0], -1).float()
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)
    return torch.log(spec.abs() + floor)


def spectrogram_images(x: torch.Tensor) -> torch.Tensor:
    """Clips (N, 1, L) -> grey images (N, 1, F, T) in [-1, 1] for grids: log-magnitude from LOG_FLOOR to
    LOG_CEIL, low frequencies at the bottom."""
    s = log_spectrogram(x)
    img = (s.clamp(LOG_FLOOR, LOG_CEIL) - LOG_FLOOR) / (LOG_CEIL - LOG_FLOOR) * 2.0 - 1.0
    return img.flip(1)[:, None]


def griffin_lim(magnitude: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP, length: int | None = None,
                n_iter: int = 32, momentum: float = 0.99, seed: int = 0) -> torch.Tensor:
    """Audio (N, length) whose STFT magnitude approaches `magnitude` (N, n_fft // 2 + 1, frames): Griffin & Lim
    (1984)'s alternating projections with the momentum of Perraudin et al. (2013, "fast Griffin-Lim"), starting
    from seeded random phases. Hann window, centred frames, as log_spectrogram."""
    mag = magnitude.float()
    window = torch.hann_window(n_fft, device=mag.device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(mag.shape, generator=g).to(mag.device) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(mag), phase)
    previous = torch.zeros_like(angles)
    for _ in range(max(1, n_iter)):
        x = torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=length)
        rebuilt = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous if momentum else rebuilt
        previous = rebuilt
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
    return torch.istft(mag * angles, n_fft, hop, window=window, center=True, length=length)


def spectral_convergence(magnitude: torch.Tensor, x: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP) -> float:
    """|| |S| - |STFT(x)| ||_F / || |S| ||_F: how far audio x's magnitude is from the target (0 = exact)."""
    window = torch.hann_window(n_fft, device=x.device)
    got = torch.stft(x.reshape(x.shape[0], -1).float(), n_fft, hop, window=window, center=True,
                     return_complex=True).abs()
    return float((magnitude - got).norm() / magnitude.norm().clamp(min=1e-12))
