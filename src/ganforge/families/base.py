"""The Family contract, and the shared machinery of the unconditional adversarial families.

A Family says *what* to minimise; the trainer says *how* (backward, optimizer step, autocast, EMA).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterable

import torch
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..losses import AdversarialLoss, get_loss, gp_of_gradient, gradient_penalty, interpolate, r1_penalty
from .phases import Phase, StepContext, check_phases, runs_later, take


@dataclass
class StepOutput:
    """A phase's scalar loss and the values to log (0-dim tensors or floats)."""

    loss: Tensor
    logs: dict[str, Tensor | float] = field(default_factory=dict)


class Family(nn.Module):
    """Base class: one GAN family. Subclasses set `Config` and build `G` (and `D` unless generator_only).

    What a family is, it declares (docs/architecture.md, "Capabilities"); the sampler, CLI, export and
    server read these and never probe for methods:
    - `kind`: "latent" (G maps latents to samples), "translation" (G maps images to images) or "classifier"
      (the run's product is the classifier D, and G is an auxiliary network: dann, whose G is its domain
      discriminator; no samples, no sample grids, `ganforge evaluate --classifier` measures it);
    - `conditioning`: "none", "class" (G takes class labels: `labels()`, `sample(y=...)`), "text" (G takes
      sentence embeddings: `sample(text_emb=...)`, gan-int-cls), "image" (the input image is the condition) or
      "image+domain" (an input image and a target domain);
    - `needs`: the training data beyond its kind: "" (any), "labelled", "paired", "unpaired" or "table" (rows of
      a CSV/Parquet table encoded by its TableTransformer: fatgan, ctgan; such a family trains on nothing else,
      and a table trains only such a family), "captioned" (images with captions: gan-int-cls) or "audio" (clips,
      DataSpec kind "audio": wavegan, cwavegan; such a family trains on nothing else, and audio only such a family);
    - `classifies`: D is a K-class classifier (`classify(x)` gives (N, K) logits);
    - `grows`: training moves through stages (progan's resolutions): after each step `stage_changed` says
      whether a new stage began, and `describe_stage()` names the current one;
    - `codes`: the structured latent codes G reads (infogan, aae with a categorical prior), empty for most families;
    - `has_encoder`: G carries an encoder, and `latent_of(x)` gives the latent G decodes x from (the autoencoder
      families ae, vae, aae, vaegan); `ganforge project` starts from it;
    - `truncation`: where the truncation trick acts. "z" (the default): the sampler scales the noise towards
      its mean, psi z, before G sees it. "w": the family maps z itself and moves the mapped latent towards its
      running average, w_avg + psi (w - w_avg) (stylegan); z stays unscaled, `sample(..., truncation=psi)`
      and `G(z, psi)` (psi a float or an (N,) tensor) apply it, the exported graph takes psi as an input, and
      `cfg.truncation` (model.truncation) is the psi used when none is asked.
      None: the family has no truncation trick (progan: G normalises z, so psi z gives the same image);
      `truncation_reason` says why, and the sampler, the CLI, the servers and the site refuse psi != 1
      with it instead of ignoring psi.
    """

    Config: ClassVar[type]
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[str] = "latent"
    conditioning: ClassVar[str] = "none"
    needs: ClassVar[str] = ""
    classifies: ClassVar[bool] = False
    grows: ClassVar[bool] = False  # trains through stages (progan): `stage_changed` and `describe_stage()` exist
    truncation: ClassVar[str | None] = "z"
    truncation_reason: ClassVar[str] = ""  # truncation None: why psi cannot act, quoted in the errors
    likelihood: ClassVar[bool] = False  # elbo(x) gives a likelihood bound (vae): `ganforge evaluate` reports it
    sample_note: ClassVar[str] = ""  # how samples are drawn, when not simply G(z ~ prior) (ae), for reports
    has_encoder: ClassVar[bool] = False  # G carries an encoder: latent_of(x) gives x's latent (ae, vae, aae, vaegan)
    table_continuous: ClassVar[str] = "standard"  # needs "table": numeric columns' default transform (ctgan: vgm)
    # train.* settings the family's reference uses where the trainer's defaults differ (ctgan: batch 500, Adam
    # betas (0.5, 0.9)); `ganforge train` layers them over the defaults, under recipes, --config, flags, --set
    train_defaults: ClassVar[dict[str, Any]] = {}
    onnx_refusal: ClassVar[str] = ""  # why `ganforge export --onnx/--lambda/--site` cannot export it ("" = it can)
    objective: AdversarialLoss | None = None  # the adversarial loss, set by families that have one

    def __init__(self, cfg: Any, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.generator_only = generator_only

    # -- contract -------------------------------------------------------------------------------
    def phase_specs(self) -> tuple[Phase, ...]:
        """The family's optimisation phases, in the order they run within a step (see phases.Phase)."""
        raise NotImplementedError

    def phases(self, step: int) -> tuple[str, ...]:
        """The names of the phases that run at `step`, in order (derived from phase_specs)."""
        return tuple(p.name for p in self.phase_specs() if p.runs_at(step))

    def phase(self, name: str) -> Phase:
        specs = self.phase_specs()
        for p in specs:
            if p.name == name:
                return p
        raise ValueError(f"{self.name} has phases {', '.join(p.name for p in specs)}, not '{name}'")

    def parameters_for(self, phase: str) -> Iterable[nn.Parameter]:
        """The parameters `phase` trains: those of the networks its spec names (absent networks: none)."""
        for attr in self.phase(phase).networks:
            net = getattr(self, attr)  # a declared network name, not a capability probe
            if net is not None:
                yield from net.parameters()

    def check_phases(self) -> tuple[Phase, ...]:
        specs = tuple(self.phase_specs())
        check_phases(specs, self.name)
        return specs

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        """The loss of `phase` on `batch`. `ctx` (from the trainer) says which phases run in this step and
        carries what an earlier phase hands to a later one; without it each phase draws its own."""
        raise NotImplementedError

    @property
    def loss_name(self) -> str:
        """The adversarial loss's name ("ns", "wgan-gp", ...), or "" for a family without one."""
        return self.objective.name if self.objective is not None else ""

    @property
    def codes(self) -> tuple:
        """The structured latent codes G reads after the noise (infogan's); empty by default."""
        return ()

    def after_step(self, phase: str) -> None:
        """Called after the optimizer step of `phase` (e.g. WGAN weight clipping). Default: nothing."""

    def bind_data(self, data: Any) -> None:
        """Called once with the training data (a TensorData) before training starts or resumes, for
        families that keep part of it (e.g. sgan's labelled subset). Default: nothing."""

    def check_batch_size(self, batch_size: int) -> None:
        """Raise a ValueError naming the fix when the family cannot train on batches of `batch_size` samples
        per process (ctgan: a multiple of its pack size); build_run asks before training. Default: any."""

    def check_ready(self) -> None:
        """Raise a ValueError naming the fix when the family cannot train yet (e.g. srgan's content network is
        missing); the trainer asks before training writes anything. Default: ready."""

    def sample_inputs(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n inputs for `sample(n, z=...)`: latents for a latent family. A fixed set of them is what the
        trainer's sample grid and FID callback draw once and reuse."""
        return self.noise(n, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, **cond: Any) -> Tensor:
        """n samples from the generator `net` (default self.G), in the data's own range."""
        G = net if net is not None else self.G
        if z is None:
            z = self.noise(n, generator=generator)
        return G(z)

    def standing_forward(self, net: nn.Module, inputs: Tensor, start: int = 0) -> None:
        """Run the generator `net` (in train mode) on `inputs` from `sample_inputs`, so that its BatchNorm layers
        see the activations they normalise when sampling: what `ganforge.train.ema.standing_statistics` averages
        into the EMA copy's statistics. `start` is the index of inputs[0] among all the inputs of the refresh
        (which comes in training-sized batches). Default: `sample`. A family overrides it to skip work that
        sampling adds after G (specgan's Griffin-Lim), to spread conditions over the batches (cgan's classes) or
        to run nothing (stackgan); layers it does not reach keep their statistics."""
        self.sample(len(inputs), z=inputs, net=net)

    # -- helpers --------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.cfg.latent_dim)

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), (n, latent_dim). A given generator keeps sampling off the global RNG."""
        return self.rows(n, lambda m: torch.randn(m, self.latent_dim, generator=generator), generator).to(self.device)

    # (rank, world size) of a multi-process run, set by the trainer; see rows()
    shard: tuple[int, int] = (0, 1)

    def rows(self, n: int, draw: Any, generator: torch.Generator | None = None) -> Tensor:
        """`draw(n)` from the global RNG, or in a K-process run this rank's n rows of `draw(n * K)`.

        Every rank draws the whole global batch (the RNG streams stay equal across ranks) and keeps its
        slice, so K ranks together train on the very latents one process draws for the global batch.
        Draws from an explicit `generator` (sampling, evaluation) are never sharded.
        """
        rank, world = self.shard
        if world == 1 or generator is not None:
            return draw(n)
        return draw(n * world)[rank * n : (rank + 1) * n]

    @classmethod
    def make_config(cls, overrides: dict[str, Any] | None = None) -> Any:
        """The family's Config from a dict, with a clear error on unknown keys."""
        overrides = dict(overrides or {})
        names = {f.name for f in fields(cls.Config)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(
                f"unknown {cls.name} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return cls.Config(**overrides)


def d_readout(obj: AdversarialLoss, logits: Tensor) -> Tensor:
    """D(x) as logged: a probability for the cross-entropy losses, the raw score otherwise."""
    return torch.sigmoid(logits).mean() if obj.prob else logits.mean()


@torch.no_grad()
def critic_logs(obj: AdversarialLoss, loss: Tensor, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
    """What every family logs about its D phase (the health monitor reads these): the loss, D(x) on real and
    fake, D's accuracy at the loss's threshold (the midpoint of the two means when it has none), and the
    Wasserstein estimate for the wgan losses."""
    thr = obj.threshold if obj.threshold is not None else 0.5 * (real_logits.mean() + fake_logits.mean())
    logs = {"d/loss": loss.detach(), "d/real": d_readout(obj, real_logits), "d/fake": d_readout(obj, fake_logits),
            "d/acc_real": (real_logits > thr).float().mean(), "d/acc_fake": (fake_logits < thr).float().mean()}
    # ADA's overfitting heuristic r_t = E[sign(D(real))], the sign taken at the loss's threshold
    logs["d/rt"] = torch.sign(real_logits - thr).mean()
    if obj.name in ("wgan", "wgan-gp"):
        logs["d/w_distance"] = real_logits.mean() - fake_logits.mean()
    return logs


def critic_step(obj: AdversarialLoss, critic: Callable[[Tensor], Tensor], real_in: Tensor, fake_in: Tensor,
                gp_weight: float, real_target: float = 1.0, real: Tensor | None = None,
                fake: Tensor | None = None, joint: bool = False) -> StepOutput:
    """D's phase for a critic of one input: the adversarial loss on critic(real_in) and critic(fake_in), plus
    gp_weight * WGAN-GP on the same inputs when the loss has one, with the critic logs and (given `real`
    and `fake`, the rows before any packing or augmentation) their spreads. Used by the table families.

    `joint` (for a critic whose rows do not interact: no batch statistics) runs one critic call on the real,
    fake and (WGAN-GP) interpolated rows stacked, instead of three: the same values, a third of the calls, which
    is most of a small MLP critic's time (ctgan on a 442-row table). Outside bf16 autocast only (the penalty's
    rows must stay fp32)."""
    use_gp = obj.gp and gp_weight > 0
    n = real_in.shape[0]
    gp = None
    if (joint and real_in.shape == fake_in.shape and real_in.device == fake_in.device
            and not torch.is_autocast_enabled(real_in.device.type)):
        rows = [real_in.detach().float(), fake_in.detach().float()]
        if use_gp:
            x_hat = interpolate(rows[0], rows[1]).requires_grad_(True)
            rows.append(x_hat)
        logits = critic(torch.cat(rows)).float()
        real_logits, fake_logits = logits[:n], logits[n : 2 * n]
        if use_gp:
            (grad,) = torch.autograd.grad(logits[2 * n :].sum(), x_hat, create_graph=True)
            gp = gp_of_gradient(grad)
    else:
        real_logits, fake_logits = critic(real_in).float(), critic(fake_in).float()
    loss = obj.d(real_logits, fake_logits, real_target)
    logs: dict[str, Tensor | float] = {"d/adv": loss.detach()}
    if use_gp:
        if gp is None:
            gp = gradient_penalty(critic, real_in, fake_in)
        loss = loss + gp_weight * gp
        logs["d/gp"] = gp.detach()
    with torch.no_grad():
        logs.update(critic_logs(obj, loss, real_logits, fake_logits))
        if real is not None and fake is not None:
            logs["stats/real_spread"] = spread(real)
            logs["stats/fake_spread"] = spread(fake)
    return StepOutput(loss, logs)


def spread(x: Tensor) -> Tensor:
    """Per-dimension std across the batch (dim 0), averaged: (). Two passes by hand: torch's std over dim 0
    takes ~1 ms for a batch of 64 64x64 images, this ~0.15 ms."""
    flat = x.float().flatten(1)
    dev = flat - flat.mean(0)
    return (dev.pow(2).sum(0) / (flat.shape[0] - 1)).sqrt().mean()


def class_spread(x: Tensor, y: Tensor) -> Tensor | None:
    """Per-dimension std across the samples of each class (classes with >= 2 samples), averaged: (). A G
    that ignores z draws one image per class, so this falls to ~0 while the whole batch still varies."""
    flat, spreads = x.float().flatten(1), []
    for c in torch.unique(y):
        members = flat[y == c]
        if len(members) >= 2:
            spreads.append(spread(members))
    return torch.stack(spreads).mean() if spreads else None


def _lecam_state_as_configured(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """Load-state pre-hook of the adversarial families: a checkpoint written with LeCam off gains its averages at
    zero (a fresh start, which the bias correction handles) when a resumed run turns it on, and one written with
    LeCam on drops them when the resumed run turns it off; otherwise strict loading would refuse either."""
    keys = (prefix + "lecam_avg", prefix + "lecam_seen")
    if module.cfg.lecam_weight > 0:
        for key, buf in zip(keys, (module.lecam_avg, module.lecam_seen)):
            state_dict.setdefault(key, torch.zeros_like(buf))
    else:
        for key in keys:
            state_dict.pop(key, None)


@dataclass
class AdversarialConfig:
    """Options every unconditional adversarial family shares."""

    latent_dim: int = 100
    loss: str = "ns"                # minimax | ns | lsgan | wgan | wgan-gp | hinge
    n_critic: int = 1               # D updates per G update
    label_smoothing: float = 0.0    # one-sided: real target = 1 - label_smoothing (minimax, ns, lsgan)
    r1_weight: float = 0.0          # gamma of the R1 penalty; 0 disables it
    r1_every: int = 1               # R1 as its own D phase every k steps, weight x k (lazy R1); 1: in every D loss
    gp_weight: float = 10.0         # lambda of WGAN-GP
    clip_value: float = 0.01        # WGAN weight clipping range
    lecam_weight: float = 0.0       # LeCam regulariser's weight (Tseng et al. 2021; 0.3 in their hinge runs); 0: off
    lecam_decay: float = 0.99       # decay of its moving averages of D's mean real and fake outputs


class AdversarialFamily(Family):
    """An unconditional G/D pair trained with one of the adversarial losses in `ganforge.losses`."""

    augment: Callable[[Tensor], Tensor] | None = None  # D's augmentation (nn.augment.Augmenter), set by the trainer
    lecam_supported: ClassVar[bool] = True  # False where the family's own D phase has no LeCam term

    def __init__(self, cfg: AdversarialConfig, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        self.objective: AdversarialLoss = get_loss(cfg.loss)
        if cfg.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {cfg.n_critic}")
        if not 0.0 <= cfg.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {cfg.label_smoothing}")
        if cfg.label_smoothing and not self.objective.smoothing:
            raise ValueError(f"label smoothing has no meaning for the '{cfg.loss}' loss; set label_smoothing=0")
        if cfg.r1_every < 1:
            raise ValueError(f"r1_every must be >= 1 (1: R1 in every D step; k: lazy R1 every k steps), got {cfg.r1_every}")
        if cfg.lecam_weight < 0 or not 0.0 < cfg.lecam_decay < 1.0:
            raise ValueError(f"model.lecam_weight must be >= 0 (0: off) and model.lecam_decay in (0, 1), got "
                             f"{cfg.lecam_weight} and {cfg.lecam_decay}")
        if cfg.lecam_weight > 0 and not self.lecam_supported:
            raise ValueError(f"{self.name} does not implement the LeCam regulariser; set model.lecam_weight=0")
        self.G = self.build_generator()
        self.D = None if generator_only else self.build_discriminator()
        if cfg.lecam_weight > 0:
            # LeCam's moving averages of D's mean output on real and on fake images, not yet bias-corrected, and
            # how many D steps they have seen: in the checkpoint (family state), so a resumed run goes on exactly
            self.register_buffer("lecam_avg", torch.zeros(2))
            self.register_buffer("lecam_seen", torch.zeros((), dtype=torch.long))
        self.register_load_state_dict_pre_hook(_lecam_state_as_configured)

    def build_generator(self) -> nn.Module:
        raise NotImplementedError

    def build_discriminator(self) -> nn.Module:
        raise NotImplementedError

    def augmented(self, x: Tensor) -> Tensor:
        """x as D sees it: through `self.augment` (DiffAugment / ADA, set by the trainer) when there is one.
        Real and fake images, in D's phase and in G's, pass through it; R1 and the gradient penalty see clean
        images."""
        return x if self.augment is None else self.augment(x)

    @property
    def lazy_r1(self) -> bool:
        """R1 runs as its own phase every r1_every steps (Karras et al. 2020) instead of in every D loss."""
        return self.cfg.r1_weight > 0 and self.cfg.r1_every > 1

    def phase_specs(self) -> tuple[Phase, ...]:
        cfg = self.cfg
        in_d_loss = bool(self.objective.gp or (cfg.r1_weight > 0 and not self.lazy_r1))
        specs = [Phase("d", ("D",), lr="lr_d", double_backward=in_d_loss)]
        if self.lazy_r1:
            specs.append(Phase("d_reg", ("D",), lr="lr_d", every=cfg.r1_every, optimizer="d", lazy=True,
                               double_backward=True))
        specs.append(Phase("g", ("G",), lr="lr_g", every=cfg.n_critic, updates_ema=True))
        return tuple(specs)

    def _d_readout(self, logits: Tensor) -> Tensor:
        return d_readout(self.objective, logits)

    def lecam(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The LeCam regulariser (Tseng et al., CVPR 2021) on this D step's outputs: D's outputs on real images
        are penalised (squared) where they rise above the moving average of its outputs on fakes, and its outputs
        on fakes where they fall below the moving average of its outputs on reals. With few real images D drifts
        to ever more confident outputs on them (r_t -> 1); this holds the two sides within reach of each other.
        The averages (decay `lecam_decay`) take this step's means first, then are bias-corrected for their zero
        start, as Tseng et al.'s StyleGAN2 code does. Under torchrun the means are averaged over the processes."""
        decay = self.cfg.lecam_decay
        with torch.no_grad():
            means = torch.stack([real_logits.float().mean(), fake_logits.float().mean()])
            if self.shard[1] > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(means)  # every process keeps the same averages (of the whole batch)
                means /= self.shard[1]
            self.lecam_avg.lerp_(means.to(self.lecam_avg.device), 1.0 - decay)
            self.lecam_seen += 1
            # on the buffers' device: no host sync per step
            avg_real, avg_fake = (self.lecam_avg / (1.0 - torch.pow(decay, self.lecam_seen.double()).float())).unbind()
        return (torch.relu(real_logits.float() - avg_fake).square().mean()
                + torch.relu(avg_real - fake_logits.float()).square().mean())

    # -- hooks a conditional family overrides: how fakes are drawn and how D scores a batch ----------
    def generate(self, n: int) -> tuple[Tensor, Any]:
        """n fakes from self.G (with the graph) and the condition they were drawn with (None here)."""
        return self.G(self.noise(n)), None

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        """D's logits (N,) for x under the condition `cond` (ignored by unconditional families)."""
        return self.D(x)

    def real_condition(self, batch: Batch) -> Any:
        """The condition of the real batch (None for unconditional families)."""
        return None

    def r1(self, batch: Batch, weight: float) -> tuple[Tensor, Tensor]:
        """(weight * gamma/2 * R1, R1) on the real batch under its condition."""
        cond_real = self.real_condition(batch)
        r1 = r1_penalty(lambda x: self.critic(x, cond_real), batch.x)
        return weight * 0.5 * self.cfg.r1_weight * r1, r1

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        real = batch.x
        obj, cfg = self.objective, self.cfg
        if phase == "d":
            if runs_later(ctx, "g"):
                # G's phase of this step reuses these fakes (one G forward per step, as in Radford et al.'s
                # reference loop); G's weights do not change in between
                fake_g, cond_fake = self.generate(batch.size)  # keeps G's graph for the G phase
                ctx.handoff["fakes"] = (fake_g, cond_fake)
                fake = fake_g.detach()
            else:
                with torch.no_grad():
                    fake, cond_fake = self.generate(batch.size)
            cond_real = self.real_condition(batch)
            real_logits = self.critic(self.augmented(real), cond_real).float()
            fake_logits = self.critic(self.augmented(fake), cond_fake).float()
            loss = obj.d(real_logits, fake_logits, 1.0 - cfg.label_smoothing)
            logs: dict[str, Tensor | float] = {"d/adv": loss.detach()}
            if cfg.lecam_weight > 0:
                lecam = self.lecam(real_logits, fake_logits)
                loss = loss + cfg.lecam_weight * lecam
                logs["d/lecam"] = lecam.detach()
            if obj.gp:
                gp = gradient_penalty(lambda x: self.critic(x, cond_real), real, fake)
                loss = loss + cfg.gp_weight * gp
                logs["d/gp"] = gp.detach()
            if cfg.r1_weight > 0 and not self.lazy_r1:
                penalty, r1 = self.r1(batch, 1.0)
                loss = loss + penalty
                logs["d/r1"] = r1.detach()
            with torch.no_grad():
                logs.update(critic_logs(obj, loss, real_logits, fake_logits))
                logs.update({
                    # per-dimension std across the batch, averaged: a collapsed G has a tiny fake spread
                    "stats/real_spread": spread(real),
                    "stats/fake_spread": spread(fake),
                })
                if isinstance(cond_real, Tensor) and isinstance(cond_fake, Tensor):  # class labels
                    rs, fs = class_spread(real, cond_real), class_spread(fake, cond_fake)
                    if rs is not None and fs is not None:
                        logs["stats/real_class_spread"], logs["stats/fake_class_spread"] = rs, fs
            return StepOutput(loss, logs)
        if phase == "d_reg":  # lazy R1: every r1_every steps, weighted by r1_every
            penalty, r1 = self.r1(batch, float(cfg.r1_every))
            # + 0 * every D parameter: the same value and gradients, but parameters R1 does not reach (a last bias,
            # acgan's class head, infogan's Q head) are in the graph, as distributed data parallel needs when R1 is
            # a phase of its own (Karras et al.'s reference code adds 0 * D(x) for the same reason)
            untouched = sum(p.reshape(-1)[0] for p in self.D.parameters())
            return StepOutput(penalty + 0.0 * untouched, {"d/r1": r1.detach()})
        if phase == "g":
            shared = take(ctx, "fakes")
            if shared is None or shared[0].shape[0] != batch.size:
                shared = self.generate(batch.size)
            fake, cond_fake = shared
            loss = obj.g(self.critic(self.augmented(fake), cond_fake).float())
            return StepOutput(loss, {"g/loss": loss.detach()})
        raise ValueError(f"{self.name} has phases {', '.join(p.name for p in self.phase_specs())}, not '{phase}'")

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        if phase == "d" and self.objective.clip:
            for p in self.D.parameters():
                p.clamp_(-self.cfg.clip_value, self.cfg.clip_value)
