"""GAN-INT-CLS (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis"): images from sentences.

G(z, t) and D(x, t) both read the sentence embedding t of a frozen text encoder (ganforge.text: all-MiniLM-L6-v2
here, 384 wide; the paper trains a char-CNN-RNN on the captions first). G compresses t to `proj_dim` (128 in the
paper) with a fully connected layer and a leaky ReLU and appends it to z; D joins its image features with its own
compression of t (nn/conditional.py says how that relates to the paper's 4x4 depth concatenation), or, with
`d_condition: projection`, scores the text through an inner product with its image features (the projection
discriminator of Miyato & Koyama 2018, which postdates the paper).

- CLS, the matching-aware discriminator: D sees three kinds of pairs, real image + right text (real), real image +
  wrong text and fake image + right text (both fake). Its loss with the adversarial loss's real and fake terms:
      L_D = real(s_r) + wrong_weight * fake(s_w) + (1 - wrong_weight) * fake(s_f),
  written as (1 - w) * d(s_r, s_f) + w * d(s_r, s_w) so that every loss of ganforge.losses works; the paper's
  Algorithm 1 is w = 0.5 with the cross-entropy loss. The wrong text of image i is the caption of image i - 1 of
  the batch (the batch is shuffled, so it is another random caption); w = 0 turns the matching term off.
- INT, manifold interpolation: G also learns from embeddings between two captions, t = beta t1 + (1 - beta) t2
  (beta = 0.5 in the paper), which D scores as it would any fake: `interp_weight` * g(D(G(z', t), t)) is added to
  G's loss (0 turns it off). Interpolated texts have no real image, so they never enter D's loss.
- Defaults follow the paper where it is specific (z of 100, text compressed to 128, Adam 2e-4 with beta1 0.5 from
  the trainer's defaults, batch 64, the non-saturating loss); the backbone is ganforge's DCGAN (MLP for points).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..losses import gradient_penalty, r1_penalty
from ..nn import TextConditionalDiscriminator, TextConditionalGenerator, TextProjectionDiscriminator
from . import backbones
from .backbones import feature_dim
from .base import AdversarialConfig, AdversarialFamily, StepOutput, critic_logs, d_readout, spread
from .phases import StepContext, runs_later, take

PREVIEW_CAPTIONS = 10
# Training captions the EMA copy's BatchNorm refresh runs G on (spread evenly over the training images): the
# statistics then come from the captions G trained on, not from the 10 preview ones. As many as the refresh
# draws samples (ganforge.train.ema.BN_REFRESH_SAMPLES), so that it reaches all of them.
REFRESH_CAPTIONS = 256


@dataclass
class GANINTCLSConfig(AdversarialConfig):
    latent_dim: int = 100
    arch: str = "auto"            # auto (dcgan for images, mlp for points) | dcgan | mlp
    proj_dim: int = 128           # the compressed text embedding, in G and in D
    d_condition: str = "concat"   # concat: a hidden layer over [image features, compressed text] (Reed et al.);
                                  # projection: <W proj(t), features> added to D's score (Miyato & Koyama 2018)
    d_hidden: int = 256           # concat: D's head over [image features, compressed text]
    wrong_weight: float = 0.5     # CLS: weight of (real image, wrong text) among D's fake terms; 0 turns it off
    interp_weight: float = 1.0    # INT: weight of G's loss on interpolated texts; 0 turns it off
    interp_beta: float = 0.5      # INT: t = beta t1 + (1 - beta) t2
    width: int = 64               # dcgan: channels of G's last and D's first conv
    max_width: int = 512
    d_batchnorm: bool = True
    hidden: int = 256             # mlp: units per hidden layer
    depth: int = 3                # mlp: hidden layers


def _check(cfg: GANINTCLSConfig) -> None:
    for name in ("wrong_weight", "interp_beta"):
        value = getattr(cfg, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"gan-int-cls {name} must be in [0, 1], got {value}")
    if cfg.interp_weight < 0:
        raise ValueError(f"gan-int-cls interp_weight must be >= 0 (0 turns GAN-INT off), got {cfg.interp_weight}")
    if cfg.d_condition not in ("concat", "projection"):
        raise ValueError(f"gan-int-cls d_condition must be concat or projection, got '{cfg.d_condition}'")
    if cfg.proj_dim < 1 or cfg.d_hidden < 1:
        raise ValueError("gan-int-cls proj_dim and d_hidden must be >= 1")


class GANINTCLS(AdversarialFamily):
    """Text-conditional DCGAN with the matching-aware discriminator and interpolated captions (Reed et al. 2016)."""

    Config = GANINTCLSConfig
    name = "gan-int-cls"
    conditioning = "text"
    needs = "captioned"
    lecam_supported = False  # its D phase is its own (no LeCam term there)
    description = "text to image, matching-aware D + caption interpolation (Reed 2016); captioned images"

    def __init__(self, cfg: GANINTCLSConfig, spec: DataSpec, generator_only: bool = False) -> None:
        if spec.text_dim < 1:
            raise ValueError(f"gan-int-cls needs captioned images but '{spec.name}' has no captions; use "
                             "builtin:fashion-captions, builtin:digits-captions or a folder with a caption file per "
                             "image (cat.png + cat.txt)")
        _check(cfg)
        self.arch = backbones.resolve_arch(self.name, cfg.arch, spec)
        self.refresh_text: Tensor | None = None  # (R, E) training caption embeddings, from bind_data
        super().__init__(cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        base = backbones.generator(self.arch, c.latent_dim + c.proj_dim, self.spec, c)
        return TextConditionalGenerator(base, self.spec.text_dim, c.proj_dim, PREVIEW_CAPTIONS)

    def text_discriminator(self, shape: tuple[int, ...]) -> nn.Module:
        """D(x, t) for inputs of `shape` on the family's backbone, the text joined as `d_condition` says."""
        c = self.cfg
        base = backbones.discriminator(self.arch, shape, c)
        if c.d_condition == "projection":
            return TextProjectionDiscriminator(base, feature_dim(base, shape), self.spec.text_dim, c.proj_dim)
        return TextConditionalDiscriminator(base, feature_dim(base, shape), self.spec.text_dim, c.proj_dim, c.d_hidden)

    def build_discriminator(self) -> nn.Module:
        return self.text_discriminator(tuple(self.spec.shape))

    def bind_data(self, data: Any) -> None:
        """The preview captions (what `sample` draws when given no text): the first caption of the first image of
        each class (of the first images, unlabelled), kept in G so that a checkpoint carries them."""
        caps = data.captions
        if caps is None:
            raise ValueError(f"gan-int-cls needs captions but '{data.spec.name}' has none")
        if data.y is not None:
            firsts = [int((data.y == k).nonzero()[0]) for k in torch.unique(data.y).tolist()]
        else:
            firsts = list(range(min(len(data), PREVIEW_CAPTIONS)))
        rows = [firsts[i % len(firsts)] for i in range(PREVIEW_CAPTIONS)]
        ids = caps.ids[torch.tensor(rows), 0]
        self.G.set_preview([caps.texts[i] for i in ids.tolist()], caps.embeddings[ids])
        n = len(caps.ids)
        if n:
            images = torch.linspace(0, n - 1, min(n, REFRESH_CAPTIONS)).round().long().unique()
            self.refresh_text = caps.embeddings[caps.ids[images, images % caps.ids.shape[1]]].float()

    @property
    def preview_texts(self) -> list[str]:
        """The captions G draws when given none (kept in G's buffers, so a checkpoint carries them)."""
        return self.G.preview_captions

    # -- training ---------------------------------------------------------------------------------
    @staticmethod
    def text(batch: Batch) -> Tensor:
        t = batch.extras.get("text_emb")
        if t is None:
            raise ValueError("gan-int-cls got a batch without caption embeddings; train it on captioned images")
        return t

    def interpolated(self, t: Tensor) -> Tensor:
        b = self.cfg.interp_beta
        return b * t + (1.0 - b) * t.roll(1, 0)

    def critic_loss(self, D: nn.Module, real: Tensor, fake: Tensor, t: Tensor) -> StepOutput:
        """D's matching-aware loss on (real, right text), (real, wrong text) and (fake, right text), plus the
        gradient penalty or R1 when configured, with the critic logs (the module docstring's L_D)."""
        obj, cfg = self.objective, self.cfg
        real_in = self.augmented(real)
        s_real = D(real_in, t).float()
        s_fake = D(self.augmented(fake), t).float()
        w = cfg.wrong_weight
        target = 1.0 - cfg.label_smoothing
        loss = (1.0 - w) * obj.d(s_real, s_fake, target)
        logs: dict[str, Tensor | float] = {}
        if w > 0:
            s_wrong = D(real_in, t.roll(1, 0)).float()
            loss = loss + w * obj.d(s_real, s_wrong, target)
            logs["d/wrong"] = d_readout(obj, s_wrong.detach())
        logs["d/adv"] = loss.detach()
        if obj.gp:
            gp = gradient_penalty(lambda x: D(x, t), real, fake)
            loss = loss + cfg.gp_weight * gp
            logs["d/gp"] = gp.detach()
        if cfg.r1_weight > 0 and not self.lazy_r1:
            r1 = r1_penalty(lambda x: D(x, t), real)
            loss = loss + 0.5 * cfg.r1_weight * r1
            logs["d/r1"] = r1.detach()
        with torch.no_grad():
            logs.update(critic_logs(obj, loss, s_real, s_fake))
            logs["stats/real_spread"], logs["stats/fake_spread"] = spread(real), spread(fake)
        return StepOutput(loss, logs)

    def r1_phase(self, D: nn.Module, real: Tensor, t: Tensor) -> StepOutput:
        """Lazy R1 as its own phase (weight x r1_every), every D parameter in the graph (as AdversarialFamily)."""
        r1 = r1_penalty(lambda x: D(x, t), real)
        untouched = sum(p.reshape(-1)[0] for p in self.D.parameters())
        return StepOutput(float(self.cfg.r1_every) * 0.5 * self.cfg.r1_weight * r1 + 0.0 * untouched,
                          {"d/r1": r1.detach()})

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        obj, cfg = self.objective, self.cfg
        real, t = batch.x, self.text(batch)
        if phase == "d":
            if runs_later(ctx, "g"):  # G's phase reuses these fakes (one G forward per step)
                fake_g = self.G(self.noise(batch.size), t)
                ctx.handoff["fakes"] = (fake_g, t)
                fake = fake_g.detach()
            else:
                with torch.no_grad():
                    fake = self.G(self.noise(batch.size), t)
            return self.critic_loss(self.D, real, fake, t)
        if phase == "d_reg":
            return self.r1_phase(self.D, real, t)
        if phase == "g":
            shared = take(ctx, "fakes")
            fake, t_fake = shared if shared is not None and shared[0].shape[0] == batch.size else \
                (self.G(self.noise(batch.size), t), t)
            loss = obj.g(self.D(self.augmented(fake), t_fake).float())
            logs = {"g/adv": loss.detach()}
            if cfg.interp_weight > 0:
                t_int = self.interpolated(t)
                fake_int = self.G(self.noise(batch.size), t_int)
                interp = obj.g(self.D(self.augmented(fake_int), t_int).float())
                loss = loss + cfg.interp_weight * interp
                logs["g/interp"] = interp.detach()
            logs["g/loss"] = loss.detach()
            return StepOutput(loss, logs)
        raise ValueError(f"{self.name} has phases {', '.join(p.name for p in self.phase_specs())}, not '{phase}'")

    # -- sampling ----------------------------------------------------------------------------------
    def text_embeddings(self, n: int, text_emb: Any, device: torch.device | None = None) -> Tensor | None:
        """(n, E) embeddings from None (the preview captions), one (E,) row for all, or n rows."""
        if text_emb is None:
            return None
        t = torch.as_tensor(text_emb, dtype=torch.float32, device=device or self.device)
        if t.dim() == 1:
            t = t.expand(n, -1)
        if t.shape != (n, self.spec.text_dim):
            raise ValueError(f"need one {self.spec.text_dim}-wide text embedding per sample: {n} samples but "
                             f"{tuple(t.shape)}")
        return t

    def standing_forward(self, net: nn.Module, inputs: Tensor, start: int = 0) -> None:
        """G on the latents with training captions (`refresh_text`, one per latent, running on across the
        refresh's batches), so the EMA copy's BatchNorm statistics are those of the captions G trained on; the
        preview captions where no data was bound."""
        if self.refresh_text is None:
            super().standing_forward(net, inputs, start)
            return
        rows = (torch.arange(len(inputs)) + start) % len(self.refresh_text)
        net(inputs, self.refresh_text[rows].to(inputs.device))

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, text_emb: Any = None, **cond: Any) -> Tensor:
        G = net if net is not None else self.G
        if z is None:
            z = self.noise(n, generator=generator)
        return G(z, self.text_embeddings(n, text_emb, device=z.device))
