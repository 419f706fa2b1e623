"""Text for the text-to-image families: the frozen sentence encoder (all-MiniLM-L6-v2) and caption checks.

`check_text` (text/checks.py) needs no torch, so the server and the Lambda package import it; the encoder
(`TextEncoder`, `text_encoder`, text/encoder.py) is imported on first use.
"""

from typing import Any

from .checks import MAX_TEXT_CHARS, check_text

__all__ = ["MAX_TEXT_CHARS", "TextEncoder", "check_text", "text_encoder"]


def __getattr__(name: str) -> Any:
    if name in ("TextEncoder", "text_encoder"):
        from . import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module 'ganforge.text' has no attribute {name!r}")
