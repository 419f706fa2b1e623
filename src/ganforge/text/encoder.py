"""Captions -> fixed sentence embeddings: the frozen encoder, its identity, the checks on user text, the cache.

The text-to-image families never see words, only the (N, 384) embeddings of `TextEncoder.encode`. A run records
the encoder's identity (`TextEncoder.id`: the model's name and the SHA-256 of its weights) and a sampler refuses a
different encoder, since the same caption would then land elsewhere in embedding space. Embeddings of a dataset's
captions are computed once and cached on disk by (encoder, caption set).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..cache import cache_root
from .checks import check_text, pad_ids
from .minilm import INSTALL_FIX, load_minilm, max_seq_length, model_dir

ENCODE_BATCH = 64
MODEL_NAME = "all-MiniLM-L6-v2"


class TextEncoder:
    """all-MiniLM-L6-v2, frozen: `encode(["a red car", ...])` -> (N, 384) float32 unit vectors on the CPU."""

    def __init__(self, path: Path | None = None) -> None:
        try:
            from tokenizers import Tokenizer  # noqa: PLC0415
        except ImportError as e:
            raise ImportError(f"the text encoder needs the 'tokenizers' package: {INSTALL_FIX}") from e
        self.path = path or model_dir()
        self.model, self.sha256 = load_minilm(self.path)
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_seq_length(self.path))

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def id(self) -> str:
        """The encoder's identity as recorded in runs and model cards: name@first 16 hex of its weights' SHA-256."""
        return f"{MODEL_NAME}@{self.sha256[:16]}"

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch: int = ENCODE_BATCH) -> Tensor:
        """Unit-norm embeddings (N, dim), float32, in the order of `texts` (each checked by `check_text`)."""
        texts = [check_text(t, f"caption {i + 1}") for i, t in enumerate(texts)]
        out = torch.empty(len(texts), self.dim)
        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: little padding
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            tok, mask = pad_ids([ids[i] for i in rows])
            out[rows] = self.model(torch.from_numpy(tok), torch.from_numpy(mask)).float()
        return out

    def encode_cached(self, texts: Sequence[str], cache: Path | None = None) -> Tensor:
        """`encode(texts)`, kept on disk by (encoder, the exact list of texts): a dataset's captions are encoded
        once. The file is written to a temporary name and renamed, so an interrupted run leaves no half file."""
        texts = list(texts)
        key = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:20]
        folder = cache or cache_root() / "text-embeddings" / self.id.replace("@", "-")
        path = folder / f"{key}.npy"
        if path.exists():
            emb = np.load(path)
            if emb.shape == (len(texts), self.dim):
                return torch.from_numpy(emb)
        emb = self.encode(texts).numpy()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)
        return torch.from_numpy(emb)


_ENCODER: TextEncoder | None = None


def text_encoder() -> TextEncoder:
    """The process's one TextEncoder (loading the weights takes ~0.3 s; keep one)."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = TextEncoder()
    return _ENCODER
