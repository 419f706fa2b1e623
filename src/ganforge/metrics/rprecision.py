"""R-precision for text to image (Xu et al. 2018, AttnGAN): does a generated image retrieve its own caption?

For each generated image, its caption is ranked among `candidates` captions: itself and candidates - 1 captions
of OTHER images drawn at random, by cosine similarity between the image's embedding and each caption's embedding
in a joint image-text space. R-precision with R = 1 (one relevant caption per image) is the share of images whose
own caption ranks first; chance is 1 / candidates. As in the paper the draw is repeated (`repeats`) and the mean
and standard deviation over repeats are reported. The same with the captions shuffled among the images (each image
scored against another image's caption, still among candidates) is the measured chance level.

The joint space (`RetrievalModel`, fitted by `fit_retrieval`) plays the part of AttnGAN's DAMSM, trained on the
REAL training images and their captions only, never on generated images:
- text side: the caption's frozen sentence embedding (all-MiniLM-L6-v2, ganforge.text) through one linear layer;
- image side: a small CNN (four stride-2 3x3 convolutions with SiLU, global average pool, linear);
- loss: the symmetric contrastive loss of CLIP (Radford et al. 2021) over a batch of (image, caption) pairs with a
  fixed temperature, so each image's caption is pulled above the batch's other captions and the other way round.
Its R-precision on REAL held-out images is the ceiling that a generator's figure is read against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

CANDIDATES = 100  # captions ranked per image (Xu et al. 2018)
REPEATS = 10      # draws of the other captions, averaged (Xu et al. 2018)
TEMPERATURE = 0.07


def r_precision(image_emb: Tensor, text_emb: Tensor, owner: Tensor | None = None, candidates: int = CANDIDATES,
                repeats: int = REPEATS, seed: int = 0) -> dict[str, Any]:
    """R-precision (R = 1) of images retrieving their caption.

    image_emb (N, D): one embedding per image. text_emb (M, D): caption embeddings; image i's own caption is row i
    (M = N) unless `owner` (M,) names which image each caption describes, in which case image i's own caption is the
    first row owned by i and the distractors are captions owned by other images. Returns mean, std over repeats and
    chance (1 / candidates). Raises ValueError when fewer than candidates - 1 other images exist."""
    n = len(image_emb)
    if owner is None:
        if len(text_emb) != n:
            raise ValueError(f"{n} images but {len(text_emb)} captions: pass owner= to say whose each caption is")
        owner = torch.arange(n)
    owner = torch.as_tensor(owner)
    others = int(owner.unique().numel()) - 1
    if others < candidates - 1:
        raise ValueError(f"R-precision among {candidates} captions needs captions of at least {candidates} images; "
                         f"got {others + 1}: pass candidates=<= {others + 1}")
    own = torch.full((n,), -1, dtype=torch.long)
    for j in range(len(owner) - 1, -1, -1):  # first caption of each image
        if 0 <= int(owner[j]) < n:
            own[int(owner[j])] = j
    if bool((own < 0).any()):
        raise ValueError(f"{int((own < 0).sum())} images have no caption of their own")
    sim = F.normalize(image_emb.float(), dim=1) @ F.normalize(text_emb.float(), dim=1).T  # (N, M)
    g = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(repeats):
        hits = 0
        for i in range(n):
            # distractors: captions of other images, never one equal to image i's own (a tie would count as a miss)
            same = (text_emb == text_emb[own[i]]).all(1)
            pool = ((owner != i) & ~same).nonzero().squeeze(1)
            pick = pool[torch.randperm(len(pool), generator=g)[:candidates - 1]]
            hits += int(sim[i, own[i]] > sim[i, pick].max())
        scores.append(hits / n)
    t = torch.tensor(scores)
    return {"r_precision": round(float(t.mean()), 4), "std": round(float(t.std()) if repeats > 1 else 0.0, 4),
            "chance": round(1 / candidates, 4), "candidates": candidates, "repeats": repeats, "n": n}


class ImageTower(nn.Module):
    """(N, C, H, W) in [-1, 1] -> (N, dim): four stride-2 3x3 convolutions, global average pool, linear."""

    def __init__(self, channels: int, dim: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for k in range(4):
            layers += [nn.Conv2d(c, width * 2 ** k, 3, 2, 1), nn.SiLU()]
            c = width * 2 ** k
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).mean((2, 3)))


class RetrievalModel(nn.Module):
    """The joint image-text space of r_precision: image(x) and text(sentence_embedding), both (N, dim)."""

    def __init__(self, channels: int, text_dim: int, dim: int = 256, width: int = 32) -> None:
        super().__init__()
        self.image_tower = ImageTower(channels, dim, width)
        self.text_proj = nn.Linear(text_dim, dim)

    def image(self, x: Tensor, batch: int = 256) -> Tensor:
        return torch.cat([self.image_tower(x[i:i + batch].float()) for i in range(0, len(x), batch)])

    def text(self, t: Tensor) -> Tensor:
        return self.text_proj(t.float())


def contrastive_loss(img: Tensor, txt: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """CLIP's symmetric loss: cross-entropy of each image over the batch's captions and of each caption over the
    images, the matching pair being the diagonal."""
    logits = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T / temperature
    target = torch.arange(len(img))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


@dataclass
class FitReport:
    steps: int
    final_loss: float
    seconds: float


def fit_retrieval(images: Tensor, text_emb: Tensor, caption_ids: Tensor, steps: int = 1500, batch: int = 128,
                  lr: float = 1e-3, seed: int = 0, dim: int = 256, width: int = 32,
                  shift: int = 4) -> tuple[RetrievalModel, FitReport]:
    """Fit the joint space on real images. images: (N, C, H, W) uint8 or [-1, 1]; text_emb: (M, D) caption
    embeddings; caption_ids: (N, K) each image's K caption rows (a random one is used per step). Each step draws a
    batch of distinct images, one of each image's captions, and shifts the images by up to `shift` pixels
    (reflection padding) so the tower does not learn pixel positions by heart."""
    import time

    t0 = time.time()
    x = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = RetrievalModel(x.shape[1], text_emb.shape[1], dim, width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    batch = min(batch, len(x))
    loss = torch.tensor(0.0)
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=g)[:batch]
        col = torch.randint(caption_ids.shape[1], (batch,), generator=g)
        t = text_emb[caption_ids[idx, col]]
        xb = x[idx]
        if shift:
            h, w = xb.shape[-2:]
            dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=g))
            xb = F.pad(xb, (shift, shift, shift, shift), mode="reflect")[..., shift + dy:shift + dy + h,
                                                                        shift + dx:shift + dx + w]
        loss = contrastive_loss(model.image_tower(xb), model.text(t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model, FitReport(steps, round(float(loss.detach()), 4), round(time.time() - t0, 1))
