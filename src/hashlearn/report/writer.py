"""Figures of the report as files: each PNG written into ``<stem>_files/`` and embedded in the page."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

import hashlearn.report.html as markup
from hashlearn._io import atomic_write
from hashlearn.report.figures import figure_png

__all__ = ["FIGURE_FILES", "FigureWriter"]

# Every PNG the report may write into ``<stem>_files/``; those not drawn this time are removed.
FIGURE_FILES = (
    "pr_curves.png",
    "radius_curves.png",
    "tsne.png",
    "umap.png",
    "class_distances.png",
    "bit_usage.png",
    "retrieval.png",
    "robustness.png",
)


class FigureWriter:
    """Renders figures to PNG, writes each into the figures folder and returns its HTML block."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[str] = []

    def add(self, figure: Figure, file_name: str, alt: str, caption: str) -> str:
        png = figure_png(figure)
        with atomic_write(self.folder / file_name) as handle:
            handle.write(png)
        self.written.append(file_name)
        return markup.figure_block(png, alt, caption, f"{self.folder.name}/{file_name}")

    def remove_stale(self) -> None:
        for name in FIGURE_FILES:
            if name not in self.written:
                (self.folder / name).unlink(missing_ok=True)
