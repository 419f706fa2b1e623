"""The spoken-digit classifier behind the `speech` feature extractor (16 kHz mono clips of 16,384 samples).

What it is: the clip's log-magnitude spectrogram (data.audio.log_spectrogram: 256-point Hann STFT, hop 128, so
129 frequency bins x 129 frames), standardised by fixed constants, through a VGG-style CNN (four conv stages
with BatchNorm, each halved by max-pooling), then a global average over time and frequency, a 128-d hidden layer
whose activations are the features (the role Inception's pool3 plays in FID), and a linear classifier over the
ten digits "zero".."nine". Averaging over time makes it indifferent to where in the clip the word is.

What it can judge: which of the ten English digit words a clip says, for the espeak-ng voices of
builtin:spoken-digits (trained on 100 of its voices; its accuracy on the 20 held-out voices is in speech.json) --
an analogue of the Inception score, FID on its features, and class agreement for conditional runs, as Donahue et
al. used an SC09 classifier. What it cannot judge: human speech (it never heard any), other words, music, or
audio quality beyond what changes its features; its FIDs are comparable with each other only (same weights hash).

Trained by scripts/train_speech_classifier.py and shipped as metrics/weights/speech.safetensors (SPEECH_WEIGHTS);
the architecture settings travel in the weights' metadata.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .clipart_net import load_weights
from .fashion_net import count_parameters, vgg_body

FEATURE_DIM = 128
LOG_MEAN, LOG_STD = -4.0, 3.0  # fixed standardisation of log |STFT| (roughly the spoken digits' over all bins)
SPEECH_WEIGHTS = Path(__file__).resolve().parent.parent / "metrics" / "weights" / "speech.safetensors"

__all__ = ["FEATURE_DIM", "SPEECH_WEIGHTS", "SpeechNet", "count_parameters", "load_speech_net"]


class SpeechNet(nn.Module):
    """Clips (N, 1, L) in [-1, 1] (or (N, 1, 1, L)) -> `feature_dim` features -> `n_classes` logits."""

    def __init__(self, n_classes: int = 10, width: int = 16, feature_dim: int = FEATURE_DIM,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got n_classes={n_classes}")
        w = width
        self.body = vgg_body(1, w)  # (N, 8w, 8, 8) from 129 x 129 spectrograms
        self.hidden = nn.Sequential(
            nn.Linear(8 * w, feature_dim, bias=False), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, n_classes)
        self.width = width

    def config(self) -> dict:
        return {"width": self.width, "feature_dim": self.classifier.in_features,
                "n_classes": self.classifier.out_features}

    @staticmethod
    def spectrogram(x: Tensor) -> Tensor:
        """Clips -> standardised log-spectrogram images (N, 1, 129, frames)."""
        from ..data.audio import log_spectrogram

        s = log_spectrogram(x.reshape(x.shape[0], -1))
        return ((s - LOG_MEAN) / LOG_STD)[:, None]

    def features(self, x: Tensor) -> Tensor:
        h = self.body(self.spectrogram(x))
        return self.hidden(h.mean((2, 3)))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.features(x)))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.features(x)
        return feats, self.classifier(feats)


def load_speech_net(weights: str | Path | None = None) -> SpeechNet:
    """The trained classifier from `weights` (default: the shipped SPEECH_WEIGHTS), in eval mode."""
    path = Path(weights) if weights is not None else SPEECH_WEIGHTS
    return load_weights(SpeechNet, path, "scripts/train_speech_classifier.py", "speech classifier")
