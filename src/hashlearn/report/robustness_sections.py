"""The report's section on near-duplicate robustness: the table per transform and a figure.

It reads what ``hashlearn robustness --out FILE.json`` writes
(:meth:`hashlearn.encoding.RobustnessResult.to_dict`): the settings, one summary row per
transform and the distances of every copy to its original.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import hashlearn.report.html as markup
from hashlearn._json import read_json_file
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.report.document import MAX_RESULTS_BYTES
from hashlearn.report.writer import FigureWriter

__all__ = ["load_robustness", "robustness_figure", "robustness_steps"]

KIND = "hashlearn robustness"
_ROW_KEYS = ("transform", "copies", "within_radius", "top1", "median_rank", "mean_rank")


def load_robustness(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """The robustness results in ``source`` (a JSON file or the dict itself), checked."""
    if isinstance(source, Mapping):
        document: Any = dict(source)
        where = "the robustness results"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise InvalidInputError(f"robustness results file not found: {where!r}")
        document = read_json_file(path, max_bytes=MAX_RESULTS_BYTES, error=FileFormatError)
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise FileFormatError(
            f"{where!r} is not the output of `hashlearn robustness --out FILE.json`"
        )
    rows = document.get("rows")
    if (
        not isinstance(rows, list)
        or not rows
        or not all(isinstance(row, dict) and all(k in row for k in _ROW_KEYS) for row in rows)
    ):
        raise FileFormatError(f"{where!r} has no rows with the keys {', '.join(_ROW_KEYS)}")
    return document


def robustness_figure(document: Mapping[str, Any]) -> Figure:
    """Per transform: the share of copies within the radius, and the share at rank 1."""
    rows = document["rows"]
    names = [str(row["transform"]) for row in rows]
    x = np.arange(len(names))
    figure = Figure(figsize=(max(5.0, 0.9 * len(names) + 1.5), 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    width = 0.38
    ax.bar(
        x - width / 2,
        [row["within_radius"] for row in rows],
        width,
        label=f"within radius {document['radius']}",
    )
    ax.bar(x + width / 2, [row["top1"] for row in rows], width, label="original nearest (top1)")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of copies")
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return figure


def robustness_steps(document: Mapping[str, Any], writer: FigureWriter) -> list[Callable[[], str]]:
    """The robustness section of a checked ``document``, as one callable returning its HTML."""
    return [lambda: _robustness_section(document, writer)]


def _robustness_section(document: Mapping[str, Any], writer: FigureWriter) -> str:
    radius = document["radius"]
    flip = (
        " Each copy was also encoded mirrored, the nearer distance kept (flip-invariant)."
        if document.get("flip_invariant")
        else ""
    )
    intro = (
        f"<p>{document.get('n_photos', '?')} photos, {document.get('n_bits', '?')}-bit codes. "
        "Every photo was edited once per transform; each copy was searched among all the "
        "originals' codes. The rank of the original counts ties half (1: nearest alone)."
        f"{flip}</p>"
    )
    described = document.get("transforms", {})
    table = markup.simple_table(
        [
            "transform",
            "what",
            "copies",
            f"within r={radius}",
            "top1",
            "median rank",
            "mean rank",
            "mean distance",
            f"others within r={radius}",
        ],
        [
            [
                row["transform"],
                described.get(row["transform"], ""),
                row["copies"],
                f"{row['within_radius']:.2f}",
                f"{row['top1']:.2f}",
                f"{row['median_rank']:g}",
                f"{row['mean_rank']:.2f}",
                f"{row.get('mean_distance', float('nan')):.2f}",
                f"{row.get('others_within_radius', float('nan')):.2f}",
            ]
            for row in document["rows"]
        ],
    )
    block = writer.add(
        robustness_figure(document),
        "robustness.png",
        "share of edited copies found within the radius and at rank 1, per transform",
        "Near-duplicate robustness per transform.",
    )
    return markup.section("Near-duplicate robustness", intro, table, block, anchor="robustness")
