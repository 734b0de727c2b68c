"""Putting the report together: the results sections, the model sections, one HTML file.

The sections come from :mod:`hashlearn.report.results_sections` and
:mod:`hashlearn.report.model_sections`; their figures are written by
:class:`~hashlearn.report.writer.FigureWriter`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hashlearn.report.html as markup
from hashlearn._io import atomic_write
from hashlearn._progress import progress
from hashlearn._validation import check_int, check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import Hasher
from hashlearn.report.document import load_results
from hashlearn.report.model import load_model
from hashlearn.report.model_sections import model_steps
from hashlearn.report.results_sections import results_steps
from hashlearn.report.robustness_sections import load_robustness, robustness_steps
from hashlearn.report.writer import FigureWriter

__all__ = ["build_report"]


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
    robustness: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    verbose: bool = True,
) -> Path:
    """Write a self-contained HTML report of benchmark results, and optionally of one model.

    The page holds the benchmark's header (dataset, protocol, manifests, versions, metric
    definitions), a methods x bits table per metric (mean ± std over seeds, the best of each column
    in bold), precision-recall curves and Hamming-radius lookup curves. With a model it adds a
    t-SNE map and a UMAP map of its distinct database codes (each drawn once, sized by how many
    items share it; UMAP needs the ``umap`` extra, ``umap-learn``, and is skipped with a note
    without it), the Hamming distances between class median codes, and the top-10 results of 8
    queries with their codes and the ties that decide them. Figures are PNG files in ``<out stem>_files/`` and are also
    embedded in the page as ``data:`` URIs, so the HTML file alone shows everything. Every file is
    written atomically.

    Parameters
    ----------
    results : str, path-like or dict
        Results JSON written by :func:`hashlearn.experiments.write_results` (schema 2), or the
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
        Seed of the split, of the maps' sample, of t-SNE and UMAP, and of the query choice.
    features : str
        Feature extractor (fitted on the split's train part) for a model that reads features.
    title : str or None
        Page title; None makes one from the dataset and protocol.
    tsne_points : int
        Largest sample of database codes whose distinct codes the maps draw.
    robustness : str, path-like, dict or None
        Near-duplicate robustness results (``hashlearn robustness --out FILE.json``) to show
        as a section of their own.
    verbose : bool
        Show progress (a bar on a terminal, plain lines otherwise).

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
    robust = None if robustness is None else load_robustness(robustness)
    recorded = document["protocol"]
    if title is None:
        title = f"hashlearn report: {recorded.get('dataset', '?')}, protocol {recorded.get('name', '?')}"
    writer = FigureWriter(out.with_name(out.stem + "_files"))
    steps = results_steps(document, writer)
    if hasher is not None:
        same_data = dataset is None or dataset == recorded.get("dataset")
        split_by = protocol or (recorded.get("name", "default") if same_data else "default")
        steps += model_steps(
            hasher,
            dataset or recorded.get("dataset"),
            split_by,
            seed,
            features,
            tsne_points,
            writer,
        )
    if robust is not None:
        steps += robustness_steps(robust, writer)
    writer.folder.mkdir(parents=True, exist_ok=True)
    sections = []
    for step in progress(steps, desc="report", unit="section", disable=not verbose):
        sections.append(step())
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections.insert(0, markup.header_section(document, generated))
    text = markup.page(title, sections, n_images=len(writer.written))
    with atomic_write(out) as handle:
        handle.write(text.encode("utf-8"))
    writer.remove_stale()
    return out
