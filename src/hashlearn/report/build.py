"""Putting the report together: tables and figures from the results, model views, one HTML file."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from hashlearn._io import atomic_write
from hashlearn._validation import check_int, check_random_state
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.hashers import Hasher
from hashlearn.report import figures
from hashlearn.report import html as markup
from hashlearn.report.model import (
    EncodedSplit,
    class_distances,
    encode_split,
    load_model,
    needs_features,
    retrievals,
    tsne_embedding,
)
from hashlearn.report.results import (
    Group,
    group_rows,
    load_results,
    mean_curve,
    metric_names,
    metric_table,
)

__all__ = ["FIGURE_FILES", "build_report"]

# Every PNG the report may write into ``<stem>_files/``; those not drawn this time are removed.
FIGURE_FILES = (
    "pr_curves.png",
    "radius_curves.png",
    "tsne.png",
    "class_distances.png",
    "bit_usage.png",
    "retrieval.png",
)


class _Writer:
    """Renders figures to PNG, writes each into the figures folder and returns its HTML block."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[str] = []

    def add(self, figure: Figure, file_name: str, alt: str, caption: str) -> str:
        png = figures.figure_png(figure)
        with atomic_write(self.folder / file_name) as handle:
            handle.write(png)
        self.written.append(file_name)
        return markup.figure_block(png, alt, caption, f"{self.folder.name}/{file_name}")

    def remove_stale(self) -> None:
        for name in FIGURE_FILES:
            if name not in self.written:
                (self.folder / name).unlink(missing_ok=True)


def build_report(
    results: str | os.PathLike[str] | Mapping[str, Any],
    out_path: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | Hasher | None = None,
    dataset: str | None = None,
    protocol: str | None = None,
    seed: int = 0,
    features: str = "pixels",
    title: str | None = None,
    tsne_points: int = 2000,
    verbose: bool = True,
) -> Path:
    """Write a self-contained HTML report of benchmark results, and optionally of one model.

    The page holds the benchmark's header (dataset, protocol, manifests, versions, metric
    definitions), a methods x bits table per metric (mean ± std over seeds, the best of each column
    in bold), precision-recall curves and Hamming-radius lookup curves. With a model it adds a
    t-SNE map of its database codes, the Hamming distances between class median codes and the
    top-10 results of 8 queries. Figures are PNG files in ``<out stem>_files/`` and are also
    embedded in the page as ``data:`` URIs, so the HTML file alone shows everything. Every file is
    written atomically.

    Parameters
    ----------
    results : str, path-like or dict
        Results JSON written by :func:`hashlearn.benchmark.write_results` (schema 2), or the
        document itself.
    out_path : str or path-like
        HTML file to write; its folder is created when missing.
    model : str, path-like, Hasher or None
        Fitted hasher or model file (``Hasher.save``) to look at; None for results only.
    dataset : str or None
        Dataset the model is shown on; None takes the results' ``protocol.dataset``.
    protocol : str or None
        Protocol that splits it; None takes the results' protocol for the results' dataset, else
        ``"default"``.
    seed : int
        Seed of the split, of the t-SNE sample and of the query choice.
    features : str
        Feature extractor (fitted on the split's train part) for a model that reads features.
    title : str or None
        Page title; None makes one from the dataset and protocol.
    tsne_points : int
        Largest number of database codes embedded by t-SNE.
    verbose : bool
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The HTML file written.

    Raises
    ------
    InvalidInputError
        For a missing results or model file or an invalid argument.
    FileFormatError
        For a results document that is not valid schema-2 JSON, or a model file that is not a
        hashlearn model.
    UnknownNameError
        For an unknown dataset or feature extractor.
    """
    document = load_results(results)
    out = Path(out_path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InvalidInputError(f"out_path must name an .html file, got {str(out)!r}")
    seed = check_int(check_random_state(seed, "seed"), "seed")
    tsne_points = check_int(tsne_points, "tsne_points", minimum=4)
    hasher = None if model is None else load_model(model)
    recorded = document["protocol"]
    if title is None:
        title = f"hashlearn report: {recorded.get('dataset', '?')}, protocol {recorded.get('name', '?')}"
    writer = _Writer(out.with_name(out.stem + "_files"))
    steps = _results_steps(document, writer)
    if hasher is not None:
        same_data = dataset is None or dataset == recorded.get("dataset")
        split_by = protocol or (recorded.get("name", "default") if same_data else "default")
        steps += _model_steps(
            hasher,
            dataset or recorded.get("dataset"),
            split_by,
            seed,
            features,
            tsne_points,
            writer,
        )
    writer.folder.mkdir(parents=True, exist_ok=True)
    sections = []
    for step in tqdm(steps, desc="report", unit="section", disable=not verbose):
        sections.append(step())
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections.insert(0, markup.header_section(document, generated))
    text = markup.page(title, sections, n_images=len(writer.written))
    with atomic_write(out) as handle:
        handle.write(text.encode("utf-8"))
    writer.remove_stale()
    return out


# -- results sections ---------------------------------------------------------------------------


def _results_steps(document: dict[str, Any], writer: _Writer) -> list[Callable[[], str]]:
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


def _pr_section(groups: list[Group], writer: _Writer) -> str:
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


def _radius_section(groups: list[Group], writer: _Writer) -> str:
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


# -- model sections -----------------------------------------------------------------------------


def _model_steps(
    hasher: Hasher,
    dataset: str | None,
    protocol: str,
    seed: int,
    features: str,
    tsne_points: int,
    writer: _Writer,
) -> list[Callable[[], str]]:
    _check_names(hasher, dataset, protocol, features)
    state: dict[str, EncodedSplit] = {}

    def encode() -> str:
        state["encoded"] = encode_split(hasher, dataset, seed, features, protocol)
        encoded = state["encoded"]
        facts = {
            "method": hasher.name,
            "code length": f"{hasher.n_bits} bits",
            "input": _input_description(hasher, features),
            "data": f"{dataset}, protocol {protocol} with seed {seed}: "
            f"{len(encoded.query)} queries, {len(encoded.database)} database items",
        }
        return markup.section(
            f"Model: {hasher.name}, {hasher.n_bits} bits",
            markup.facts_table(facts),
            anchor="model",
        )

    return [
        encode,
        lambda: _tsne_section(state["encoded"], seed, tsne_points, writer),
        lambda: _class_section(state["encoded"], writer),
        lambda: _bits_section(state["encoded"], writer),
        lambda: _retrieval_section(state["encoded"], seed, writer),
    ]


def _check_names(hasher: Hasher, dataset: str | None, protocol: str, features: str) -> None:
    """Fail on an unknown dataset, protocol or feature extractor before anything is computed or
    written."""
    from hashlearn.datasets import list_datasets
    from hashlearn.evaluation import get_protocol
    from hashlearn.features import create_features

    if not dataset:
        raise InvalidInputError("a model report needs a dataset: pass dataset=NAME")
    known = list_datasets()
    if dataset not in known and not dataset.startswith(("arrays:", "folder:")):
        raise UnknownNameError(f"unknown dataset {dataset!r}; available: {', '.join(known)}")
    get_protocol(protocol)
    if needs_features(hasher):
        create_features(features)  # an unknown name fails here


def _input_description(hasher: Hasher, features: str) -> str:
    """What the model reads: images, the model's own features, or those of ``features``."""
    from hashlearn.hashers import FeatureHasher

    if isinstance(hasher, FeatureHasher):
        steps = hasher.features.get_config().get("steps", [hasher.features.get_config()])
        return " + ".join(step["name"] for step in steps) + " features (kept in the model file)"
    return f"{features} features" if needs_features(hasher) else "images"


def _tsne_section(encoded: EncodedSplit, seed: int, max_points: int, writer: _Writer) -> str:
    heading = "t-SNE of the database codes"
    labels = encoded.database.y
    if labels.ndim != 1 or len(encoded.database_codes) < 4:
        return markup.section(
            heading,
            markup.note("t-SNE needs single-label data and at least 4 database items: skipped."),
            anchor="tsne",
        )
    if len(np.unique(encoded.database_codes, axis=0)) < 2:
        # a collapsed model: nothing to map (and t-SNE's PCA start would divide by zero)
        return markup.section(
            heading,
            markup.note("Every database item has the same code: there is nothing to map."),
            anchor="tsne",
        )
    positions, embedding = tsne_embedding(
        encoded.database_codes, encoded.n_bits, max_points=max_points, random_state=seed
    )
    figure = figures.tsne_figure(embedding, labels[positions], encoded.class_names, encoded.n_bits)
    block = writer.add(
        figure,
        "tsne.png",
        "t-SNE scatter of database codes coloured by class",
        f"t-SNE (init='pca', random_state={seed}) of {len(positions)} database codes as "
        "+-1 vectors, coloured by class.",
    )
    return markup.section(heading, block, anchor="tsne")


def _class_section(encoded: EncodedSplit, writer: _Writer) -> str:
    heading = "Distances between class median codes"
    labels = encoded.database.y
    if labels.ndim != 1 or len(np.unique(labels)) < 2:
        return markup.section(
            heading,
            markup.note("Needs single-label data with two classes or more: skipped."),
            anchor="classes",
        )
    result = class_distances(encoded.database_codes, labels, encoded.n_bits)
    names = [encoded.label_name(c) for c in result.classes]
    closest = (result.position(result.closest[0]), result.position(result.closest[1]))
    farthest = (result.position(result.farthest[0]), result.position(result.farthest[1]))
    figure = figures.class_distance_figure(
        result.distances, names, closest, farthest, encoded.n_bits
    )
    block = writer.add(
        figure,
        "class_distances.png",
        "heat map of Hamming distances between class median codes",
        "Bit j of a class median code is 1 when at least half of the class's database codes have "
        "it set. Closest pair outlined solid white, farthest dashed magenta.",
    )
    a, b, d = result.closest
    c, e, f = result.farthest
    text = (
        f"<p>Closest classes: <strong>{escape(encoded.label_name(a))}</strong> and "
        f"<strong>{escape(encoded.label_name(b))}</strong>, {d} bits apart. "
        f"Farthest classes: <strong>{escape(encoded.label_name(c))}</strong> and "
        f"<strong>{escape(encoded.label_name(e))}</strong>, {f} bits apart.</p>"
    )
    table = markup.simple_table(
        ["class", "median code (hex, byte 0 first)", "bits (bit 0 first)"],
        [[n, h, s] for n, h, s in zip(names, result.hex_codes, result.bit_strings)],
        css=["", "code", "code"],
    )
    return markup.section(heading, text, block, table, anchor="classes")


def _bits_section(encoded: EncodedSplit, writer: _Writer) -> str:
    from hashlearn.codes import code_statistics

    stats = code_statistics(encoded.database_codes, encoded.n_bits)
    block = writer.add(
        figures.bit_usage_figure(stats.bit_means, stats.correlation),
        "bit_usage.png",
        "share of database codes with each bit set, and correlation between bits",
        "Balanced, uncorrelated bits carry the most information and spread the codes over the "
        "most hash-table buckets.",
    )
    most = min(encoded.n_bits, float(np.log2(stats.n_codes)))
    off_balance = np.abs(stats.bit_means - 0.5)
    facts = {
        "database codes": f"{stats.n_codes:,}",
        "distinct codes": f"{stats.distinct:,} ({stats.distinct / stats.n_codes:.1%})",
        "largest bucket": f"{stats.largest_bucket:,} codes share one code",
        "code entropy": f"{stats.entropy_bits:.2f} bits (at most {most:.2f})",
        "bit balance": f"mean |P(bit) - 0.5| = {off_balance.mean():.3f}, worst "
        f"{off_balance.max():.3f} (bit {int(off_balance.argmax())})",
        "bit correlation": f"mean |r| over pairs = {stats.mean_abs_correlation:.3f}",
    }
    return markup.section(
        "How the codes use their bits", markup.facts_table(facts), block, anchor="bits"
    )


def _retrieval_section(encoded: EncodedSplit, seed: int, writer: _Writer) -> str:
    found = retrievals(encoded, n_queries=8, k=10, random_state=seed)
    query = encoded.query
    database = encoded.database
    figure = figures.retrieval_figure(
        query.X[found.queries],
        [encoded.label_name(query.y[q]) for q in found.queries],
        database.X[found.indices],
        [[encoded.label_name(database.y[i]) for i in row] for row in found.indices],
        found.distances,
        found.matches,
    )
    precision = float(found.matches.mean())
    block = writer.add(
        figure,
        "retrieval.png",
        "query images and their top-10 database images",
        f"{len(found.queries)} queries (seeded choice, seed {seed}) and their {found.indices.shape[1]} "
        "nearest database items by Hamming distance (ties by database position); green frame: "
        f"same label as the query, red: different. Share with the query's label: {precision:.2f}.",
    )
    return markup.section("Retrieval examples", block, anchor="retrieval")
