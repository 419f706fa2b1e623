"""Shared CLI plumbing: the usage-error type and help formatting."""

from __future__ import annotations

import argparse


class UsageError(ValueError):
    """Bad arguments: printed as one line that names the fix, exit code 2."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-wrapped descriptions and examples; defaults are written into each help text."""
