"""The small Fashion-MNIST classifier: the `fashion` feature extractor and srgan's content network.

A VGG-style CNN (Simonyan & Zisserman, 2015) with BatchNorm (Ioffe & Szegedy, 2015), sized for CPU:
three conv stages at 28, 14 and 7 pixels, then a 128-d hidden layer whose activations are the
features (the role Inception's pool3 plays in FID) and a 10-way linear classifier on top.

It is trained by scripts/train_fashion_classifier.py and shipped as metrics/weights/fashion.safetensors
(FASHION_WEIGHTS; its accuracy and recipe are in fashion.json beside it). It lives in nn/ so that training
(srgan's content loss) can load it without importing the metrics.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

FEATURE_DIM = 128
N_CLASSES = 10
FASHION_WEIGHTS = Path(__file__).resolve().parent.parent / "metrics" / "weights" / "fashion.safetensors"
FASHION_CONTENT_LAYERS = {"deep": 5, "mid": 3}  # FashionNet.body[:k]: after conv 3 (128x7x7) / conv 2 (64x14x14)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


def vgg_body(c_in: int, width: int, stages: int = 4) -> nn.Sequential:
    """`stages` conv-BN-ReLU stages of width, 2 width, 4 width, ..., each halved by 2x2 max-pooling (the clip-art
    and speech classifiers' bodies; their weights' keys are this Sequential's)."""
    layers: list[nn.Module] = []
    for i in range(stages):
        layers += [conv_bn_relu(c_in if i == 0 else width * 2 ** (i - 1), width * 2 ** i), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


class FashionNet(nn.Module):
    """(N, 1, 28, 28) images in [-1, 1] -> 128-d features -> 10 logits."""

    def __init__(self, width: int = 32, feature_dim: int = FEATURE_DIM, n_classes: int = N_CLASSES,
                 dropout: float = 0.3) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_bn_relu(1, w), nn.MaxPool2d(2),          # (N, w, 14, 14)
            conv_bn_relu(w, 2 * w), nn.MaxPool2d(2),      # (N, 2w, 7, 7)
            conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2),  # (N, 4w, 3, 3)
        )
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * w * 9, feature_dim, bias=False), nn.BatchNorm1d(feature_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) -> (N, feature_dim): the penultimate (post-ReLU) activations."""
        return self.hidden(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) -> (N, n_classes) logits."""
        return self.classifier(self.dropout(self.features(x)))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.features(x)
        return feats, self.classifier(feats)  # dropout is the identity in eval mode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_fashion_net(weights: str | Path | None = None) -> FashionNet:
    """The trained classifier from `weights` (default: the shipped FASHION_WEIGHTS), in eval mode."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(weights) if weights is not None else FASHION_WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"Fashion-MNIST classifier weights {path} are missing; create them with "
                                "python scripts/train_fashion_classifier.py")
    with safe_open(str(path), framework="pt") as f:
        width = int((f.metadata() or {}).get("width", 32))
    net = FashionNet(width=width)
    net.load_state_dict(load_file(str(path)), strict=True)
    return net.eval()


def fashion_content_net(layer: str = "deep", weights: str | Path | None = None) -> nn.Module:
    """The first conv stages of the trained classifier, frozen: srgan's content network (`content: features`)
    where no pretrained VGG exists. "deep" is the analogue of the paper's VGG54. Grey images in [-1, 1]."""
    if layer not in FASHION_CONTENT_LAYERS:
        raise ValueError(f"content layer must be one of {', '.join(FASHION_CONTENT_LAYERS)}, got '{layer}'")
    net = load_fashion_net(weights)
    return net.body[: FASHION_CONTENT_LAYERS[layer]].eval().requires_grad_(False)
