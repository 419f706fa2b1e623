"""Text for the text-to-image families: the frozen sentence encoder (all-MiniLM-L6-v2) and caption checks."""

from .encoder import MAX_TEXT_CHARS, TextEncoder, check_text, text_encoder

__all__ = ["MAX_TEXT_CHARS", "TextEncoder", "check_text", "text_encoder"]
