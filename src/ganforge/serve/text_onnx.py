"""Captions -> sentence embeddings with tokenizers + onnxruntime alone (no torch): the text path of an exported text
model (the server and the Lambda package use it).

`export_onnx` writes a text model's frozen encoder as OUT.text.onnx (input_ids, attention_mask -> unit embeddings,
pooling and normalisation inside the graph) and its tokenizer as OUT.tokenizer.json; this module runs them the way
ganforge.text.TextEncoder runs the PyTorch encoder: each caption checked (ganforge.text.checks), tokenised with
truncation at the model's max_tokens, the batch padded with id 0 and mask 0. The Lambda package ships this file as
ganforge_text_onnx.py and text/checks.py as ganforge_text_checks.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

try:  # inside the Lambda package (serve/lambda_package.py copies text/checks.py there)
    from ganforge_text_checks import check_text, pad_ids
except ImportError:  # inside the ganforge package
    from ..text.checks import check_text, pad_ids


class OnnxTextEncoder:
    """`encode(["a red car", ...])` -> (N, dim) float32 unit vectors, from OUT.text.onnx and OUT.tokenizer.json."""

    def __init__(self, onnx_path: str | Path, tokenizer_path: str | Path, max_tokens: int = 256) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        for p in (onnx_path, tokenizer_path):
            if not Path(p).exists():
                raise FileNotFoundError(f"{p} is missing: a text model's export writes OUT.text.onnx and "
                                        "OUT.tokenizer.json beside OUT.onnx; export it again with ganforge export")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(max_tokens))

    def encode(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        texts = [check_text(t, f"caption {i + 1}") for i, t in enumerate(texts)]
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        out = None
        for start in range(0, len(ids), batch):
            rows = ids[start:start + batch]
            tok, mask = pad_ids(rows)
            emb = self.session.run(None, {"input_ids": tok, "attention_mask": mask})[0]
            if out is None:
                out = np.empty((len(ids), emb.shape[1]), dtype=np.float32)
            out[start:start + len(rows)] = emb
        return out
