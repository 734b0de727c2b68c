"""The report's sections on benchmark results: a table per metric, precision-recall curves and
hash-table lookup curves, each averaged over seeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hashlearn.report.figures as figures
import hashlearn.report.html as markup
from hashlearn.report.results import Group, group_rows, mean_curve, metric_names, metric_table
from hashlearn.report.writer import FigureWriter

__all__ = ["results_steps"]


def results_steps(document: dict[str, Any], writer: FigureWriter) -> list[Callable[[], str]]:
    """The results sections of a validated ``document``, each a callable that returns its HTML
    (and writes its figure through ``writer``)."""
    groups = group_rows(document)
    return [
        lambda: _tables_section(document, groups),
        lambda: _pr_section(groups, writer),
        lambda: _radius_section(groups, writer),
    ]


def _tables_section(document: dict[str, Any], groups: list[Group]) -> str:
    definitions = document["metrics"]
    seeds = max(len(g.rows) for g in groups)
    intro = (
        "Mean ± sample standard deviation over seeds; the best value of each column is bold."
        if seeds > 1
        else "One seed per method and code length; the best value of each column is bold."
    )
    references = sorted({g.label for g in groups if g.is_reference})
    if references:
        intro += (
            f" {', '.join(references)}: exact search on the features, no hashing, the same in "
            "every column; the reference the methods are read against, never bold."
        )
    tables = [
        markup.metric_table_html(metric_table(groups, name), str(definitions.get(name, "")))
        for name in metric_names(document)
    ]
    return markup.section(
        "Methods x code lengths",
        f"<p>{intro}</p>",
        '<div class="tables">' + "".join(tables) + "</div>",
        anchor="tables",
    )


def _missing(groups: list[Group], curve: str) -> list[str]:
    return [f"{g.label} {g.n_bits} bits" for g in groups if mean_curve(g, curve) is None]


def _pr_section(groups: list[Group], writer: FigureWriter) -> str:
    figure = figures.pr_figure(groups)
    missing = _missing(groups, "pr")
    heading = "Precision-recall curves"
    if figure is None:
        return markup.section(
            heading, markup.note("No row holds curves.pr: figure skipped."), anchor="pr"
        )
    parts = [
        writer.add(
            figure,
            "pr_curves.png",
            "precision-recall curves",
            "Mean precision and recall of the items within Hamming radius r, for every r; "
            "one panel per code length, averaged over seeds.",
        )
    ]
    if missing:
        parts.append(markup.note("No precision-recall curve for: " + ", ".join(missing) + "."))
    return markup.section(heading, *parts, anchor="pr")


def _radius_section(groups: list[Group], writer: FigureWriter) -> str:
    selected = figures.select_radius_groups(groups)
    figure = figures.radius_figure(selected)
    heading = "Hash-table lookup within a Hamming radius"
    if figure is None:
        return markup.section(
            heading, markup.note("No row holds curves.radius: figure skipped."), anchor="radius"
        )
    parts = [
        writer.add(
            figure,
            "radius_curves.png",
            "P@10 and query time against Hamming radius",
            "Left: mean P@10 of the first 10 candidates found within radius r. "
            "Right: mean lookup time per query.",
        )
    ]
    missing = _missing(groups, "radius")
    if missing:
        parts.append(markup.note("No radius curve for: " + ", ".join(missing) + "."))
    shown = {(g.label, g.n_bits) for g in selected}
    left_out = [
        f"{g.label} {g.n_bits} bits"
        for g in groups
        if (g.label, g.n_bits) not in shown and mean_curve(g, "radius") is not None
    ]
    if left_out:
        parts.append(
            markup.note(
                "Too many lines: only one code length is drawn. Not shown: "
                + ", ".join(left_out)
                + "."
            )
        )
    return markup.section(heading, *parts, anchor="radius")
