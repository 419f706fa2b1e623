"""The small clip-art classifier behind the `clipart` feature extractor (RGB drawings, 64x64).

What it is: a VGG-style CNN (Simonyan & Zisserman, 2015) with BatchNorm (Ioffe & Szegedy, 2015), the same
plan as the Fashion-MNIST classifier (nn/fashion_net.py) widened for RGB and 64x64 inputs: four conv stages at
64, 32, 16 and 8 pixels, each halved by max-pooling, then a 128-d hidden layer whose activations are the
features (the role Inception's pool3 plays in FID) and a linear classifier over the openclipart-png
categories it was trained on (the list is in clipart.json and in the weights' metadata).

What it can judge: clip-art drawings on a white background, the kind Debian's openclipart-png holds
(builtin:clipart:CATEGORY) -- outlines, flat or gradient colour fills, simple shapes and symbols, and which broad
category (computer icons, signs, people, vehicles, food, animals, plants, maps, ...) a drawing resembles.
What it cannot judge: photographs, natural textures, faces or fine detail; it never saw them, so its features
of such images say little, and FID/KID computed with it on photos are not meaningful. It also never saw
anything but white backgrounds. Its numbers are comparable with each other only (same weights hash), never
with Inception FIDs.

It is trained by scripts/train_clipart_classifier.py and shipped as metrics/weights/clipart.safetensors
(CLIPART_WEIGHTS; accuracy on the held-out split, data hash and recipe in clipart.json beside it). The
architecture settings travel in the weights' metadata, so `load_clipart_net` rebuilds whatever was trained.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor, nn

from .fashion_net import count_parameters, vgg_body

INPUT_SIZE = (64, 64)
FEATURE_DIM = 128
CLIPART_WEIGHTS = Path(__file__).resolve().parent.parent / "metrics" / "weights" / "clipart.safetensors"

__all__ = ["CLIPART_WEIGHTS", "FEATURE_DIM", "INPUT_SIZE", "ClipartNet", "count_parameters", "load_clipart_net"]


class ClipartNet(nn.Module):
    """(N, 3, 64, 64) RGB images in [-1, 1] -> `feature_dim` features -> `n_classes` logits."""

    def __init__(self, n_classes: int, width: int = 24, feature_dim: int = FEATURE_DIM, dropout: float = 0.3) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got n_classes={n_classes}")
        w = width
        self.body = vgg_body(3, w)  # (N, 8w, 4, 4)
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * w * 16, feature_dim, bias=False), nn.BatchNorm1d(feature_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, n_classes)
        self.width = width

    def config(self) -> dict:
        """What `load_clipart_net` needs to rebuild this network (stored in the weights' metadata)."""
        return {"width": self.width, "feature_dim": self.classifier.in_features,
                "n_classes": self.classifier.out_features}

    def features(self, x: Tensor) -> Tensor:
        """(N, 3, 64, 64) -> (N, feature_dim): the penultimate (post-ReLU) activations."""
        return self.hidden(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 64, 64) -> (N, n_classes) logits."""
        return self.classifier(self.dropout(self.features(x)))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.features(x)
        return feats, self.classifier(feats)  # dropout is the identity in eval mode


def read_metadata(path: str | Path, script: str = "scripts/train_clipart_classifier.py") -> dict:
    """The weights file's one metadata entry, "config": width, feature_dim, n_classes, classes."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "config" not in meta:
        raise ValueError(f"{path} has no 'config' metadata: it was not written by {script}")
    return json.loads(meta["config"])


def load_weights(net_cls: type, path: Path, script: str, what: str) -> nn.Module:
    """A shipped classifier (`net_cls(n_classes=, width=, feature_dim=)`) rebuilt from its weights' metadata and
    loaded, in eval mode; FileNotFoundError naming `script` when the file is missing."""
    from safetensors.torch import load_file

    if not path.exists():
        raise FileNotFoundError(f"{what} weights {path} are missing; create them with python {script}")
    cfg = read_metadata(path, script)
    net = net_cls(n_classes=int(cfg["n_classes"]), width=int(cfg["width"]), feature_dim=int(cfg["feature_dim"]))
    net.load_state_dict(load_file(str(path)), strict=True)
    return net.eval()


def load_clipart_net(weights: str | Path | None = None) -> ClipartNet:
    """The trained classifier from `weights` (default: the shipped CLIPART_WEIGHTS), in eval mode."""
    path = Path(weights) if weights is not None else CLIPART_WEIGHTS
    return load_weights(ClipartNet, path, "scripts/train_clipart_classifier.py", "clip-art classifier")
