"""The frozen text encoder (ganforge.text): all-MiniLM-L6-v2 run by ganforge's own forward against
sentence-transformers' embeddings, the checks on user text, and the embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganforge.text import MAX_TEXT_CHARS, check_text, text_encoder

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def encoder():
    return text_encoder()


def test_token_ids_match_sentence_transformers(encoder):
    items = REFERENCE["items"]
    assert encoder.token_ids([it["text"] for it in items]) == [it["input_ids"] for it in items]
    assert max(len(it["input_ids"]) for it in items) == REFERENCE["max_seq_length"]  # the long one is truncated


def test_embeddings_match_sentence_transformers(encoder):
    # the empty string is a valid input to the model but not a caption: check_text refuses it, so it is
    # compared through the module itself
    items = [it for it in REFERENCE["items"] if it["text"].strip()]
    got = encoder.encode([it["text"] for it in items])
    want = torch.tensor([it["embedding"] for it in items])
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)
    empty = next(it for it in REFERENCE["items"] if not it["text"])
    ids = torch.tensor([empty["input_ids"]])
    torch.testing.assert_close(encoder.model(ids, torch.ones_like(ids))[0], torch.tensor(empty["embedding"]),
                               atol=2e-6, rtol=0)


def test_embeddings_do_not_depend_on_batching(encoder):
    texts = ["ankle boot", "a dark long-sleeved pullover with a pattern", "dress"]
    together = encoder.encode(texts)
    alone = torch.cat([encoder.encode([t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
    assert torch.linalg.vector_norm(together, dim=1).tolist() == pytest.approx([1.0] * 3, abs=1e-6)


def test_cache_round_trip(encoder, tmp_path):
    texts = ["a bright sneaker", "a wide coat"]
    first = encoder.encode_cached(texts, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again = encoder.encode_cached(texts, cache=tmp_path)  # read back from the file
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    torch.testing.assert_close(first, encoder.encode(texts), atol=0, rtol=0)


@pytest.mark.parametrize("bad, words", [
    ("", "empty"), ("   \t ", "empty"), ("x" * (10 * 1024), f"at most {MAX_TEXT_CHARS}"),
    ("a red\x00car", "U+0000"), ("bell\x07", "U+0007"), (b"caf\xe9", "not valid UTF-8"), (42, "must be a string"),
])
def test_bad_text_is_refused_with_the_reason(bad, words):
    with pytest.raises(ValueError, match=words.replace("+", r"\+")):
        check_text(bad)


def test_text_is_tidied():
    assert check_text("  a  red\tsports\ncar ") == "a red sports car"
    assert check_text("naïve café".encode()) == "naïve café"
