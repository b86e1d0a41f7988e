"""Saving a figure: one rule for every figure the toolkit writes."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["DPI", "save_figure"]

DPI = 120
"""Resolution of every saved figure (the neural figures' long-standing value)."""


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (folders created) at :data:`DPI`, cropped to its content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path
