"""PatchGAN discriminator (Isola et al. 2017): a fully convolutional D that scores overlapping patches.

C64 - C128 - C256 - C512 in the paper's 70x70 setting: 4x4 convs, stride 2 for all but the last two
layers, LeakyReLU(0.2), normalisation on all but the first, then a 1-channel 4x4 conv. The output is a
logit map (N, 1, h, w), one logit per receptive-field patch; adversarial losses average over it.
`n_layers` sets how many stride-2 layers there are: 3 for 256x256 images (70x70 patches), 2 for 28-64 px,
1 for tiny ones; `norm` is "instance" (CycleGAN, StarGAN), "batch" (pix2pix) or "none".
"""

from __future__ import annotations

from torch import Tensor, nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch, instance or none, got '{kind}'")


def patch_layers_for(size: int) -> int:
    """Stride-2 layers that suit an image side: 3 at >= 128 px (70x70 patches at 256), 2 from 24 px, else 1."""
    return 3 if size >= 128 else 2 if size >= 24 else 1


class PatchDiscriminator(nn.Module):
    """Logit map (N, 1, h, w) for images (N, in_channels, H, W)."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch",
                 max_width: int = 512) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = width
        for i in range(1, n_layers):
            c_next = min(width * 2**i, max_width)
            layers += [nn.Conv2d(c, c_next, 4, 2, 1, bias=norm == "none"), norm_layer(norm, c_next),
                       nn.LeakyReLU(0.2, inplace=True)]
            c = c_next
        c_next = min(width * 2**n_layers, max_width)
        layers += [nn.Conv2d(c, c_next, 4, 1, 1, bias=norm == "none"), norm_layer(norm, c_next),
                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c_next, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
