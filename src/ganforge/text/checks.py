"""Caption helpers with no torch: the checks on user text and the padding of token ids, shared by the PyTorch
encoder, the CLI, the server and the Lambda package (which ships this file as ganforge_text_checks.py)."""

from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np

MAX_TEXT_CHARS = 4096  # one caption; the encoder reads its first 256 tokens (about 1,000 characters of English)


def check_text(text: object, what: str = "text") -> str:
    """`text` as a clean caption, or ValueError naming what is wrong: not a string, empty, longer than
    MAX_TEXT_CHARS, or holding control characters (tabs and line breaks inside a caption are spaces)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{what} is not valid UTF-8 (byte {e.start}): save it as UTF-8 text") from None
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}")
    text = " ".join(text.replace("\t", " ").split())
    if not text:
        raise ValueError(f"{what} is empty: give a caption such as \"a dark long-sleeved pullover\"")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} has {len(text)} characters; a caption may have at most {MAX_TEXT_CHARS}: shorten it")
    bad = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")), None)
    if bad is not None:
        raise ValueError(f"{what} holds the control or unassigned character U+{ord(bad):04X} at position "
                         f"{text.index(bad)}: remove it")
    return text


def pad_ids(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of several captions as the encoder takes them: (input_ids, attention_mask), int64 (N, T), T the
    longest caption's length, padded with id 0 and mask 0."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return ids, mask
