"""Sampler: the generator alone, loaded from a checkpoint (no discriminator, no optimizer state)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import load_tensors, refuse_nonfinite, resolve_checkpoint
from ..data.spec import DataSpec
from ..families import build_family
from ..latent import between, no_truncation_message, seeded_latents

# Latents per generator call. For the 28x28 DCGAN of bench/evaluate_speed.py, batches of 128 and 256
# took the same time on the 2-core bench machine (1.17 vs 1.19 s per 10,000 samples on 2 threads, 2.25 vs
# 2.26 s on 1, interleaved runs); 512 was 40% slower. G runs in eval mode, so a sample does not depend on
# its batch (that DCGAN's were bit-identical for batches of 64 to 512).
GENERATE_BATCH = 256
TABLE_CHUNK = 65_536  # rows decoded and written at a time by iter_tables (about 30 MB for 50 columns)
TABLE_BATCH = 8192  # table rows per generator call (rows are small: big batches keep the MLP busy)


class Sampler:
    """Samples from a trained generator. `Sampler.from_checkpoint("runs/cars").generate(16, seed=0)`."""

    def __init__(self, family, config: dict[str, Any], path: Path, ema: bool) -> None:
        self.family = family
        self.G = family.G.eval()
        self.config = config
        self.path = path
        self.ema = ema
        self._transformer = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, ema: bool = True, device: str = "cpu") -> "Sampler":
        """The generator of a checkpoint directory, or of a run's newest intact checkpoint (optim.pt is not
        needed). CheckpointError, naming the checkpoint, when it is damaged or its weights are not finite."""
        ckpt = resolve_checkpoint(path, optim=False)
        config = json.loads((ckpt / "config.json").read_text())
        spec = DataSpec.from_json(config["spec"])
        family = build_family(config["family"], config["model"], spec, generator_only=True)
        if family.kind == "classifier":
            raise ValueError(f"{ckpt} holds a {family.name} classifier, which draws no samples; measure it with "
                             f"`ganforge evaluate --ckpt RUN --classifier --data builtin:TARGET`")
        use_ema = ema and (ckpt / "ema.safetensors").exists()
        if use_ema:
            weights = load_tensors(ckpt, "ema.safetensors")
        else:  # the raw generator's entries of the full model file
            weights = {k[2:]: v for k, v in load_tensors(ckpt, "model.safetensors").items() if k.startswith("G.")}
        refuse_nonfinite(ckpt, weights)
        family.G.load_state_dict(weights)
        family.to(device)
        return cls(family, config, ckpt, use_ema)

    @property
    def spec(self) -> DataSpec:
        return self.family.spec

    @property
    def step(self) -> int:
        return int(json.loads((self.path / "state.json").read_text())["step"])

    @property
    def noise_dim(self) -> int:
        """Width of the N(0, 1) noise at the start of G's input (the codes, if any, follow it)."""
        return int(self.family.latent_dim) - sum(int(c.size) for c in self.codes)  # Code.size: 1 if continuous

    @property
    def code_layout(self) -> list[dict[str, Any]]:
        """The latent codes as plain dicts (name, kind, size), in G's input order."""
        return [{"name": c.name, "kind": c.kind, "size": int(c.size)} for c in self.codes]

    @property
    def truncation_space(self) -> str:
        """Where the truncation trick acts (the family's declared `truncation`): "z", the seed's noise is scaled
        towards its mean; "w", the family moves its mapped latent towards the average and z stays as drawn;
        "none", the family has no truncation trick (progan), and psi != 1 is refused."""
        return self.family.truncation or "none"

    @property
    def default_truncation(self) -> float:
        """psi when none is asked: 1 (none) for "z" and "none" families, model.truncation for "w" families."""
        return float(self.family.cfg.truncation) if self.truncation_space == "w" else 1.0

    def _noise_scale(self, truncation: float | None) -> float:
        """The factor on the seed's noise: psi for "z" families, 1 for "w" families (psi acts on w there) and
        for "none" families, which refuse any psi but 1."""
        if truncation is not None and not 0 < truncation <= 1:
            raise ValueError(f"truncation must be in (0, 1], got {truncation}")
        if truncation is not None and truncation != 1 and self.truncation_space == "none":
            raise ValueError(no_truncation_message(self.family.name, self.family.truncation_reason, truncation))
        return 1.0 if truncation is None or self.truncation_space != "z" else float(truncation)

    def latents(self, n: int, seed: int, truncation: float | None = None) -> Tensor:
        """The latent batch a seed stands for: the same seed gives the same images everywhere (Python, the
        browser, Lambda; see `ganforge.latent`). `truncation` < 1 scales the noise towards its mean for a "z"
        family; a "w" family's latents stay as drawn (generate applies its psi)."""
        z = seeded_latents(seed, n, self.noise_dim, self.code_layout, self._noise_scale(truncation))
        return torch.from_numpy(z).to(self.family.device)

    def between_seeds(self, seed_a: int, seed_b: int, t: Tensor | list[float],
                      truncation: float | None = None) -> Tensor:
        """Latents (K, D) a fraction t of the way from seed a's first latent to seed b's (noise by slerp);
        `truncation` as in `latents`."""
        scale = self._noise_scale(truncation)
        a = seeded_latents(seed_a, 1, self.noise_dim, self.code_layout, scale)[0]
        b = seeded_latents(seed_b, 1, self.noise_dim, self.code_layout, scale)[0]
        rows = [between(a, b, float(ti), self.noise_dim) for ti in torch.as_tensor(t, dtype=torch.float64).flatten()]
        return torch.from_numpy(np.stack(rows)).to(self.family.device)

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, *, z: Tensor | None = None, y: Any = None,
                 codes: dict[str, Any] | None = None, truncation: float | None = None,
                 batch: int = GENERATE_BATCH, text: str | Sequence[str] | None = None) -> Tensor:
        """n samples (images in [-1, 1] as (N, C, H, W); points as (N, F)), as float32 on the CPU.

        `y` picks the classes of a conditional family: one int for all, or n ints (default: cycling).
        `codes` fixes latent codes of a family that has them (infogan): {"c0": 3, "c1": 0.5} or n values each.
        `truncation` psi in (0, 1] (None: `default_truncation`), as the family declares it: a "z" family's
        seed noise is scaled by psi (nothing happens to a given `z`: build it with `latents`/`between_seeds`);
        a "w" family gets psi in `sample(..., truncation=psi)`, w_avg + psi (w - w_avg), for any z; a family
        without the trick ("none", progan) raises ValueError for psi != 1 (it would change nothing).
        `batch` latents go through G at a time; G is in eval mode, so the samples do not depend on it
        (beyond float rounding, where a backend picks another kernel for another batch size).
        `text` is what a text-to-image family draws: one caption for all n samples or n captions (default: the
        model's preview captions, cycling); the frozen encoder (ganforge.text) embeds them.
        """
        # concatenated outside inference mode: an ordinary tensor that callers may change in place or
        # use in autograd (an inference tensor allows neither)
        return torch.cat(list(self._chunks(n, seed, z, y, codes, truncation, batch, text)))

    def iter_generate(self, n: int, seed: int = 0, *, z: Tensor | None = None, y: Any = None,
                      codes: dict[str, Any] | None = None, truncation: float | None = None,
                      batch: int = GENERATE_BATCH, text: str | Sequence[str] | None = None):
        """`generate`'s samples, `batch` at a time, so a caller can write them out with bounded memory."""
        return (x.clone() for x in self._chunks(n, seed, z, y, codes, truncation, batch, text))  # not inference tensors

    def _chunks(self, n: int, seed: int, z: Tensor | None, y: Any, codes: dict[str, Any] | None,
                truncation: float | None, batch: int, text: str | Sequence[str] | None = None):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.is_translation:
            raise ValueError(f"{self.family.name} translates images: use Sampler.translate(x) or `ganforge translate`")
        z = self.latents(n, seed, truncation) if z is None else z  # (checks psi)
        self._noise_scale(truncation)  # also with a given z: "none" refuses psi != 1 whatever the latents
        psi = truncation if self.truncation_space == "w" else None  # psi goes to the family's sampling
        if codes:
            if not self.codes:
                raise ValueError(f"latent codes need a family with codes (infogan); this model is '{self.family.name}'")
            z = self.family.set_codes(z, codes)
        cond: dict[str, Tensor] = {}
        if y is not None:
            if not self.conditional:
                raise ValueError(f"classes need a conditional family (cgan); this model is '{self.family.name}'")
            cond["y"] = self.family.labels(len(z), y, device=torch.device("cpu"))
        if text is not None:
            cond["text_emb"] = self.text_embeddings(len(z), text)
        return self._run_g(z, cond, batch, psi)  # a generator: the checks above run at once

    @property
    def takes_text(self) -> bool:
        """Whether the family draws images from captions (gan-int-cls): `generate(..., text=...)`."""
        return self.family.conditioning == "text"

    def text_embeddings(self, n: int, text: str | Sequence[str] | Tensor) -> Tensor:
        """(n, E) embeddings of one caption (for all n) or of n captions, by the encoder the model was trained with;
        a tensor is taken as embeddings already (one row for all, or n rows)."""
        if not self.takes_text:
            raise ValueError(f"text needs a text-to-image family (gan-int-cls); this model is '{self.family.name}'")
        if isinstance(text, Tensor):
            return self.family.text_embeddings(n, text, device=torch.device("cpu"))
        from ..text import text_encoder

        texts = [text] if isinstance(text, (str, bytes)) else list(text)
        if len(texts) not in (1, n):
            raise ValueError(f"give one caption for all {n} samples or one per sample, got {len(texts)}")
        encoder = text_encoder()
        if self.spec.text_encoder and encoder.id != self.spec.text_encoder:
            raise ValueError(f"this model was trained with the text encoder {self.spec.text_encoder} but "
                             f"{encoder.id} is installed: install the encoder it was trained with")
        emb = encoder.encode(texts)
        return emb.expand(n, -1) if len(texts) == 1 else emb

    def _run_g(self, z: Tensor, cond: dict[str, Tensor], batch: int, psi: float | None = None):
        for start in range(0, len(z), batch):
            chunk = z[start:start + batch]
            extra: dict[str, Any] = {k: v[start:start + batch].to(chunk.device) for k, v in cond.items()}
            if psi is not None:  # a "w" family's truncation (Family.truncation)
                extra["truncation"] = float(psi)
            with torch.inference_mode():  # left before yielding: the caller does not run in inference mode
                x = self.family.sample(len(chunk), z=chunk, net=self.G, **extra).float().cpu()
            yield x

    @property
    def transformer(self):
        """A table model's fitted TableTransformer (decodes generated rows); ValueError for other data."""
        if self._transformer is None:
            from ..data.table import transformer_from_spec

            self._transformer = transformer_from_spec(self.spec)
        return self._transformer

    def iter_tables(self, n: int, seed: int = 0, *, chunk: int = TABLE_CHUNK):
        """n generated rows of a table model as Tables in the training table's units and types, `chunk` rows at
        a time: the latents of each chunk are drawn on their own (row r depends only on (seed, r)), so memory
        stays at one chunk whatever n is, and the rows are the same for any chunk size."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        transformer = self.transformer
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            z = seeded_latents(seed, m, self.noise_dim, self.code_layout, 1.0, first_row=start)
            rows = self.generate(m, z=torch.from_numpy(z).to(self.family.device), batch=TABLE_BATCH)
            yield transformer.inverse(rows.numpy(), source=f"{self.family.name} {self.path}")

    @property
    def is_translation(self) -> bool:
        """Whether the generator maps images to images (pix2pix, cyclegan, ...) instead of latents."""
        return self.family.kind == "translation"

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB", domain: Any = None, batch: int = 256) -> Tensor:
        """Translate images x (N, C, H, W) in [-1, 1] (`direction` AtoB/BtoA; `domain`: stargan's target
        domain index, one int or N). Returns float32 on the CPU."""
        if not self.is_translation:
            raise ValueError(f"{self.family.name} generates from latents, it does not translate: use generate()")
        shape = tuple(self.family.in_shape if direction == "AtoB" else self.family.out_shape)
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(f"{self.family.name} {direction} expects inputs of shape (N, {', '.join(map(str, shape))}), "
                             f"got {tuple(x.shape)}")
        dev = self.family.device
        out = []
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch].to(dev)
            d = domain
            if isinstance(domain, Tensor) and domain.dim() > 0:
                d = domain[start:start + batch].to(dev)
            out.append(self.family.translate(chunk, direction, d, net=self.G).float().cpu())
        return torch.cat(out)

    @property
    def codes(self) -> tuple:
        """The family's latent codes (name, kind, size), empty when it has none."""
        return tuple(self.family.codes)

    @torch.no_grad()
    def sweep(self, name: str, rows: int, steps: int = 10, seed: int = 0, *, codes: dict[str, Any] | None = None,
              span: tuple[float, float] = (-1.0, 1.0), truncation: float | None = None) -> tuple[Tensor, int]:
        """A grid that varies one latent code along each row with everything else fixed: row r keeps the
        noise and other codes of the seed's r-th latent (with `codes` applied); the columns step the code
        `name` through every category (categorical) or `steps` values over `span` (continuous).
        Returns (rows * columns samples, columns). `truncation` as in `generate`."""
        z, columns = self.sweep_latents(name, rows, steps, seed, codes=codes, span=span, truncation=truncation)
        return self.generate(len(z), z=z, truncation=truncation), columns

    def sweep_latents(self, name: str, rows: int, steps: int = 10, seed: int = 0, *,
                      codes: dict[str, Any] | None = None,
                      span: tuple[float, float] = (-1.0, 1.0),
                      truncation: float | None = None) -> tuple[Tensor, int]:
        """The latents of `sweep` (rows * columns, D) and the number of columns (`truncation` as in `latents`)."""
        if not self.codes:
            raise ValueError(f"--sweep needs a family with latent codes (infogan); this model is '{self.family.name}'")
        code = self.family.code(name)
        if codes and name in codes:
            raise ValueError(f"code {name} is swept, so it cannot also be fixed with --code")
        if code.kind == "categorical":
            values = torch.arange(code.size, dtype=torch.float32)
        else:
            if steps < 2:
                raise ValueError(f"a continuous sweep needs at least 2 steps, got {steps}")
            values = torch.linspace(span[0], span[1], steps)
        base = self.latents(rows, seed, truncation)
        if codes:
            base = self.family.set_codes(base, codes)
        z = base.repeat_interleave(len(values), 0)
        z = self.family.set_codes(z, {name: values.repeat(rows)})
        return z, len(values)

    @property
    def conditional(self) -> bool:
        """Whether the family takes class labels (`labels`/`sample(y=...)`)."""
        return self.family.conditioning == "class"

    @torch.no_grad()
    def interpolate(self, rows: int, steps: int, seed: int = 0, truncation: float | None = None) -> Tensor:
        """`rows` strips of `steps` samples, each sliding (slerp) between two latents: (rows * steps, ...).
        `truncation` as in `generate`."""
        z = self.interpolation_latents(rows, steps, seed, truncation)
        return self.generate(len(z), z=z, truncation=truncation)

    def interpolation_latents(self, rows: int, steps: int, seed: int = 0, truncation: float | None = None) -> Tensor:
        """The latents of `interpolate`: (rows * steps, D) (`truncation` as in `latents`)."""
        if steps < 2:
            raise ValueError(f"--interpolate needs at least 2 steps, got {steps}")
        ends = self.latents(2 * rows, seed, truncation).cpu().numpy()
        t = np.linspace(0, 1, steps)
        return torch.from_numpy(np.stack([between(ends[2 * r], ends[2 * r + 1], ti, self.noise_dim)
                                          for r in range(rows) for ti in t]))
