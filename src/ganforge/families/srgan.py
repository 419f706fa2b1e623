"""SRGAN (Ledig et al., 2017): single-image super-resolution with a perceptual loss.

G is an SRResNet (nn/srresnet.py) from the low-res input (domain A, C x H x W) to the high-res target
(domain B, C' x sH x sW; s a power of 2). Its loss is the paper's perceptual loss

    l_SR = l_content + adv_weight * l_adv,   l_adv = -log D(G(x_LR))   (adv_weight 1e-3 in the paper)

with one of two content losses (`content`):
- "mse": pixel-wise MSE between G(x_LR) and x_HR (in [-1, 1] units). With adv_weight = 0 this is the
  SRResNet-MSE baseline, which maximises PSNR; with adv_weight > 0 it is the paper's "SRGAN-MSE".
- "features": MSE between feature maps phi(G(x_LR)) and phi(x_HR) of a frozen classifier, each scaled by
  `feature_scale` (the paper's VGG loss uses VGG19 conv5_4 maps and scales them by 1/12.75). No VGG can be
  downloaded here, so phi defaults to the conv stages of the shipped Fashion-MNIST classifier
  (nn/fashion_net.py; `content_layer` "deep", the analogue of VGG54, or "mid"), which reads grey images.
  `bind_data` (which build_run calls for a new or resumed run) loads it for grey data; for colour data,
  or another network, call `set_feature_net(module)`: any module from target images (N, C', sH, sW) in
  [-1, 1] to feature maps. It is not part of the checkpoint (it is not trained).

`mse_warmup_steps`: the paper initialises SRGAN's G from a trained SRResNet-MSE; the first
`mse_warmup_steps` steps train G alone on the pixel MSE, after which D joins. D never trains when
adv_weight is 0 (it is not even built).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..losses import get_loss
from ..nn.fashion_net import FASHION_CONTENT_LAYERS, fashion_content_net
from ..nn.srresnet import SRDiscriminator, SRResNet, upscale_factor
from .base import StepOutput
from .phases import Phase, StepContext, runs_later, take
from .translation import TranslationFamily

CONTENT_LOSSES = ("mse", "features")


@dataclass
class SRGANConfig:
    width: int = 64               # G channels (the paper's 64)
    n_blocks: int = 8             # G residual blocks (16 in the paper, for 96x96 crops; 8 suffice at 7-28 px)
    d_width: int = 64             # D's first conv channels, doubled every other conv ...
    d_max_width: int = 512        # ... up to this (the paper's 64 -> 512)
    d_hidden: int = 1024          # D's dense layer
    content: str = "mse"          # mse | features (the Fashion-MNIST classifier's maps, or set_feature_net)
    content_layer: str = "deep"   # content=features on grey data: the classifier's "deep" or "mid" conv maps
    feature_scale: float = 1.0    # feature maps are multiplied by this before the MSE (VGG: 1 / 12.75)
    adv_weight: float = 1e-3      # weight of the adversarial term; 0: SRResNet (no D)
    loss: str = "ns"              # adversarial objective; the paper's -log D(G(x)) is "ns"
    mse_warmup_steps: int = 0     # G-only pixel-MSE steps before the adversarial training starts


class SRGAN(TranslationFamily):
    """Super-resolution GAN: SRResNet G, conv D, content + 1e-3 adversarial loss. Paired low-res -> high-res."""

    name = "srgan"
    description = "super-resolution (Ledig et al. 2017); paired low-res -> high-res, e.g. builtin:fmnist-lowres"
    Config = SRGANConfig
    needs = "paired"

    def __init__(self, cfg: SRGANConfig, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        if cfg.content not in CONTENT_LOSSES:
            raise ValueError(f"srgan content must be one of {', '.join(CONTENT_LOSSES)}, got '{cfg.content}'")
        if cfg.content_layer not in FASHION_CONTENT_LAYERS:
            raise ValueError(f"srgan content_layer must be one of {', '.join(FASHION_CONTENT_LAYERS)}, "
                             f"got '{cfg.content_layer}'")
        if cfg.adv_weight < 0 or cfg.mse_warmup_steps < 0:
            raise ValueError(f"srgan needs adv_weight >= 0 and mse_warmup_steps >= 0, got {cfg.adv_weight} "
                             f"and {cfg.mse_warmup_steps}")
        self.scale = upscale_factor(self.in_shape, self.out_shape)
        self.objective = get_loss(cfg.loss)
        if self.objective.gp or self.objective.clip:
            raise ValueError(f"srgan supports the losses without critic constraints (ns, minimax, lsgan, hinge); "
                             f"got '{cfg.loss}'")
        self.G = SRResNet(self.in_shape[0], self.out_shape[0], self.scale, cfg.width, cfg.n_blocks)
        self.D = None
        if not generator_only and cfg.adv_weight > 0:
            self.D = SRDiscriminator(self.out_shape[0], cfg.d_width, cfg.d_max_width, hidden=cfg.d_hidden,
                                   size=min(self.out_shape[1:]))
        self.__dict__["_feature_net"] = None  # not a submodule: frozen, and not saved with the run

    # -- the content network --------------------------------------------------------------------
    def bind_data(self, data: Any) -> None:
        """Keep the preview inputs; for content="features" on grey images, load the default content network
        (the shipped Fashion-MNIST classifier's `content_layer` maps) unless one was set."""
        super().bind_data(data)
        if self.cfg.content == "features" and self.__dict__["_feature_net"] is None and self.out_shape[0] == 1:
            self.set_feature_net(fashion_content_net(self.cfg.content_layer))

    def check_ready(self) -> None:
        if self.cfg.content == "features":
            self.feature_net  # raises, naming the fix, when no content network is set

    def set_feature_net(self, module: nn.Module) -> None:
        """Use `module` (high-res images in [-1, 1] -> feature maps) for content="features"; frozen, eval mode."""
        module.eval().requires_grad_(False)
        self.__dict__["_feature_net"] = module

    @property
    def feature_net(self) -> nn.Module:
        net = self.__dict__["_feature_net"]
        if net is None:
            colour = (f"; the default, the shipped Fashion-MNIST classifier, reads grey images and these have "
                      f"{self.out_shape[0]} channels") if self.out_shape[0] != 1 else ""
            raise ValueError(f"srgan content='features' needs a feature network{colour}: call "
                             "family.set_feature_net(module) before training (build_run loads the default for "
                             "grey data), or set model.content=mse")
        return net

    def content_loss(self, sr: Tensor, hr: Tensor, kind: str | None = None) -> Tensor:
        """The content term between super-resolved `sr` and real `hr` images (N, C', sH, sW)."""
        kind = kind or self.cfg.content
        if kind == "mse":
            return F.mse_loss(sr.float(), hr.float())
        net = self.feature_net
        p = next(net.parameters(), None)
        if p is not None and p.device != sr.device:
            net.to(sr.device)
        s = self.cfg.feature_scale
        with torch.no_grad():
            target = net(hr).float() * s
        return F.mse_loss(net(sr).float() * s, target)

    # -- training -------------------------------------------------------------------------------
    def phase_specs(self) -> tuple[Phase, ...]:
        g = Phase("g", ("G",), lr="lr_g", updates_ema=True)
        if self.cfg.adv_weight <= 0:  # the SRResNet baseline: G alone
            return (g,)
        # D joins after the MSE warm-up (the paper's SRResNet initialisation)
        return (Phase("d", ("D",), lr="lr_d", start=self.cfg.mse_warmup_steps), g)

    def _pair(self, batch: Batch) -> tuple[Tensor, Tensor]:
        if batch.x_b is None:
            raise ValueError("srgan trains on paired batches (x = low-res, x_b = high-res); got a batch without x_b")
        return batch.x, batch.x_b

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        lr, hr = self._pair(batch)
        obj = self.objective
        if phase == "d":
            sr = self.G(lr)                 # kept with its graph for the G phase of this step
            if runs_later(ctx, "g"):
                ctx.handoff["sr"] = sr
            real_logits, fake_logits = self.D(hr).float(), self.D(sr.detach()).float()
            loss = obj.d(real_logits, fake_logits)
            with torch.no_grad():
                thr = obj.threshold if obj.threshold is not None else 0.5 * (real_logits.mean() + fake_logits.mean())
                read = torch.sigmoid if obj.prob else (lambda t: t)
                logs = {"d/loss": loss.detach(), "d/adv": loss.detach(),
                        "d/real": read(real_logits).mean(), "d/fake": read(fake_logits).mean(),
                        "d/acc_real": (real_logits > thr).float().mean(),
                        "d/acc_fake": (fake_logits < thr).float().mean()}
            return StepOutput(loss, logs)
        if phase == "g":
            sr = take(ctx, "sr")
            if sr is None or sr.shape[0] != lr.shape[0]:
                sr = self.G(lr)
            # without a context (a direct call), the post-warm-up objective
            adversarial = ctx.will_run("d") if ctx is not None else self.D is not None
            warm = ctx is None or ctx.step >= self.cfg.mse_warmup_steps
            content_kind = self.cfg.content if warm else "mse"
            content = self.content_loss(sr, hr, content_kind)
            loss, logs = content, {"g/content": content.detach()}
            if adversarial:
                adv = obj.g(self.D(sr).float())
                loss = content + self.cfg.adv_weight * adv
                logs["g/adv"] = adv.detach()
            with torch.no_grad():
                logs["g/mse"] = F.mse_loss(sr.float(), hr.float()) if content_kind != "mse" else content.detach()
            logs["g/loss"] = loss.detach()
            return StepOutput(loss, logs)
        raise ValueError(f"srgan has phases 'd' and 'g', not '{phase}'")

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB", domain: Any = None,
                  net: nn.Module | None = None) -> Tensor:
        """Upscale low-res images x (N, C, H, W) in [-1, 1] to (N, C', sH, sW)."""
        self.check_direction(direction)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"srgan upscales images of shape (N, {', '.join(map(str, self.in_shape))}); got "
                             f"{tuple(x.shape)}: resize the inputs to {self.in_shape[1]}x{self.in_shape[2]}")
        return (net if net is not None else self.G)(x)
