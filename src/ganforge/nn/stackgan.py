"""StackGAN's networks (Zhang et al. 2017): conditioning augmentation, and a two-stage text-to-image generator.

- ConditioningAugmentation: a sentence embedding t -> (mu, log sigma^2) by a fully connected layer with a leaky
  ReLU; the code fed to a generator is c = mu + sigma * eps, eps ~ N(0, I), while training (the mean at sampling
  time here, so that a seed and a caption give one image), with the KL divergence from N(0, I) as a regulariser.
- StackGenerator: Stage-I draws a low-resolution image from (z, c1) with a DCGAN generator; Stage-II takes that
  image and its own code c2 and refines it to `scale` times the size: a conv encoder at the Stage-I resolution,
  c2 replicated over the map and joined, residual blocks, then nearest-neighbour upsampling and convolutions to
  the output. The paper's Stage-II encodes 64x64 to 16x16 and upsamples to 256x256; the small images here keep the
  Stage-I resolution for the residual blocks. `stage` (a buffer, so checkpoints and the EMA carry it) says which
  stage trains and which output `forward` gives: Stage-I's image upsampled to the output size, or Stage-II's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conditional import TextPreview
from .dcgan import DCGANGenerator


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over dimensions and averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()


class ConditioningAugmentation(nn.Module):
    def __init__(self, text_dim: int, c_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * c_dim)
        self.c_dim = c_dim

    def forward(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(c, mu, logvar): c drawn with the re-parametrisation while training, c = mu in eval mode."""
        h = F.leaky_relu(self.fc(t), 0.2)
        mu, logvar = h[:, :self.c_dim], h[:, self.c_dim:]
        if not self.training:
            return mu, mu, logvar
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class StageTwo(nn.Module):
    """(Stage-I image (N, C, h, w), code c (N, c_dim)) -> image (N, C, H, W), H, W = the output size."""

    def __init__(self, channels: int, c_dim: int, out_hw: tuple[int, int], width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        self.out_hw = out_hw
        self.encode = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(True))
        self.join = nn.Sequential(nn.Conv2d(width + c_dim, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(True))
        self.blocks = nn.Sequential(*[_Residual(width) for _ in range(blocks)])
        self.decode = nn.Sequential(nn.Conv2d(width, width // 2, 3, 1, 1, bias=False), nn.BatchNorm2d(width // 2),
                                    nn.ReLU(True), nn.Conv2d(width // 2, channels, 3, 1, 1), nn.Tanh())

    def forward(self, low: Tensor, c: Tensor) -> Tensor:
        h = self.encode(low)
        h = self.join(torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1))
        h = F.interpolate(self.blocks(h), size=self.out_hw, mode="nearest")
        return self.decode(h)


class StackGenerator(TextPreview):
    """G(z, t): Stage-I, and Stage-II on top of it once `stage` is 2; see the module docstring."""

    def __init__(self, latent_dim: int, text_dim: int, c_dim: int, out_shape: tuple[int, int, int],
                 low_hw: tuple[int, int], width: int = 64, max_width: int = 512, s2_width: int = 64,
                 preview: int = 10) -> None:
        super().__init__(text_dim, preview)
        channels, h, w = out_shape
        self.out_hw, self.low_hw = (h, w), low_hw
        self.ca1, self.ca2 = ConditioningAugmentation(text_dim, c_dim), ConditioningAugmentation(text_dim, c_dim)
        self.stage1 = DCGANGenerator(latent_dim + c_dim, (channels, *low_hw), width, max_width)
        self.stage2 = StageTwo(channels, c_dim, (h, w), s2_width)
        self.register_buffer("stage", torch.ones((), dtype=torch.int64))

    def low(self, z: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage-I: (image at low_hw, mu, logvar)."""
        c, mu, logvar = self.ca1(t)
        return self.stage1(torch.cat([z, c.to(z.dtype)], 1)), mu, logvar

    def high(self, low: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage-II on a Stage-I image: (image at the output size, mu, logvar)."""
        c, mu, logvar = self.ca2(t)
        return self.stage2(low, c.to(low.dtype)), mu, logvar

    def upsampled(self, low: Tensor) -> Tensor:
        return F.interpolate(low, size=self.out_hw, mode="bilinear", align_corners=False)

    def forward(self, z: Tensor, t: Tensor | None = None) -> Tensor:
        t = self.default_text(z.shape[0]) if t is None else t
        low = self.low(z, t)[0]
        # both stages, chosen by the buffer inside the graph: the exported model follows the checkpoint's stage
        return torch.where(self.stage >= 2, self.high(low, t)[0], self.upsampled(low))
