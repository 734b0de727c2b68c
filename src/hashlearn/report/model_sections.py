"""The report's sections on one model: its distinct codes of a dataset's split as a t-SNE map and a
UMAP map (when ``umap-learn`` is installed), the distances between class median codes, how the
codes use their bits, and retrieval examples with the ties that decide them."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import numpy as np

import hashlearn.report.figures as figures
import hashlearn.report.html as markup
from hashlearn.codes import code_statistics, codes_to_hex
from hashlearn.datasets import list_datasets
from hashlearn.datasets.load import ARRAYS_PREFIX, FOLDER_PREFIX
from hashlearn.evaluation import get_protocol
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher, Hasher
from hashlearn.report.model import (
    UMAP_EXTRA,
    DistinctCodes,
    EncodedSplit,
    Retrievals,
    class_distances,
    distinct_codes,
    encode_split,
    needs_features,
    retrievals,
    tsne_embedding,
    umap_embedding,
)
from hashlearn.report.writer import FigureWriter

__all__ = ["model_steps"]


def model_steps(
    hasher: Hasher,
    dataset: str | None,
    protocol: str,
    seed: int,
    features: str,
    tsne_points: int,
    writer: FigureWriter,
) -> list[Callable[[], str]]:
    """The model sections, each a callable that returns its HTML (the first encodes the split;
    the others draw from it). Unknown names fail here, before anything is computed."""
    _check_names(hasher, dataset, protocol, features)
    state: dict[str, Any] = {}

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
        lambda: _tsne_section(state, seed, tsne_points, writer),
        lambda: _umap_section(state, seed, tsne_points, writer),
        lambda: _class_section(state["encoded"], writer),
        lambda: _bits_section(state["encoded"], writer),
        lambda: _retrieval_section(state["encoded"], seed, writer),
    ]


def _check_names(hasher: Hasher, dataset: str | None, protocol: str, features: str) -> None:
    """Fail on an unknown dataset, protocol or feature extractor before anything is computed or
    written."""
    if not dataset:
        raise InvalidInputError("a model report needs a dataset: pass dataset=NAME")
    known = list_datasets()
    if dataset not in known and not dataset.startswith((ARRAYS_PREFIX, FOLDER_PREFIX)):
        raise UnknownNameError(f"unknown dataset {dataset!r}; available: {', '.join(known)}")
    get_protocol(protocol)
    if needs_features(hasher):
        create_features(features)  # an unknown name fails here


def _input_description(hasher: Hasher, features: str) -> str:
    """What the model reads: images, the model's own features, or those of ``features``."""
    if isinstance(hasher, FeatureHasher):
        steps = hasher.features.get_config().get("steps", [hasher.features.get_config()])
        return " + ".join(step["name"] for step in steps) + " features (kept in the model file)"
    return f"{features} features" if needs_features(hasher) else "images"


def _map_codes(state: dict[str, Any], seed: int, max_points: int) -> DistinctCodes | str:
    """The distinct database codes both maps draw (computed once), or the note saying why there
    is no map."""
    if "distinct" not in state:
        encoded: EncodedSplit = state["encoded"]
        labels = encoded.database.y
        if labels.ndim != 1 or len(encoded.database_codes) < 4:
            found: DistinctCodes | str = (
                "The maps need single-label data and at least 4 database items: skipped."
            )
        else:
            found = distinct_codes(
                encoded.database_codes,
                labels,
                encoded.n_bits,
                max_points=max_points,
                random_state=seed,
            )
            if len(found.codes) == 1:
                # a collapsed model: nothing to map (and t-SNE's PCA start would divide by zero)
                found = "Every database item has the same code: there is nothing to map."
            elif len(found.codes) < 4:
                found = (
                    f"The {found.n_sampled} database codes hold only {len(found.codes)} distinct "
                    "codes: too few to map (a map needs 4)."
                )
        state["distinct"] = found
    return state["distinct"]


def _map_caption(encoded: EncodedSplit, distinct: DistinctCodes, method: str) -> str:
    n_all, m = len(encoded.database_codes), len(distinct.codes)
    sample = (
        f"a seeded sample of {distinct.n_sampled} of the {n_all} database codes"
        if distinct.n_sampled < n_all
        else f"the {n_all} database codes"
    )
    mixed = (
        f"; {distinct.n_mixed} of the {m} distinct codes are shared by items of more than one class"
        if distinct.n_mixed
        else ""
    )
    return (
        f"{method} of the {m} distinct codes among {sample}. Each distinct code is drawn once, "
        "its area proportional to how many of those database codes equal it (1 to "
        f"{int(distinct.counts.max())}), coloured by its most common class{mixed}."
    )


def _map_title(method: str, distinct: DistinctCodes, n_bits: int) -> str:
    return (
        f"{method} of {len(distinct.codes)} distinct codes "
        f"({distinct.n_sampled} database codes, {n_bits} bits)"
    )


def _tsne_section(state: dict[str, Any], seed: int, max_points: int, writer: FigureWriter) -> str:
    heading = "t-SNE of the database codes"
    distinct = _map_codes(state, seed, max_points)
    if isinstance(distinct, str):
        return markup.section(heading, markup.note(distinct), anchor="tsne")
    encoded: EncodedSplit = state["encoded"]
    _, embedding = tsne_embedding(
        distinct.codes, encoded.n_bits, max_points=len(distinct.codes), random_state=seed
    )
    figure = figures.code_map_figure(
        embedding,
        distinct.counts,
        distinct.labels,
        encoded.class_names,
        _map_title("t-SNE", distinct, encoded.n_bits),
    )
    block = writer.add(
        figure,
        "tsne.png",
        "t-SNE scatter of the distinct database codes, sized by count, coloured by class",
        _map_caption(encoded, distinct, f"t-SNE (init='pca', random_state={seed}, on +-1 bits)"),
    )
    return markup.section(heading, block, anchor="tsne")


def _umap_section(state: dict[str, Any], seed: int, max_points: int, writer: FigureWriter) -> str:
    heading = "UMAP of the database codes"
    distinct = _map_codes(state, seed, max_points)
    if isinstance(distinct, str):
        return markup.section(heading, markup.note(distinct), anchor="umap")
    encoded: EncodedSplit = state["encoded"]
    try:
        embedding = umap_embedding(distinct.codes, encoded.n_bits, random_state=seed)
    except ModuleNotFoundError as exc:
        if exc.name != "umap":
            raise
        return markup.section(
            heading,
            markup.note(
                "UMAP map skipped: it needs the optional package umap-learn, which is not "
                f"installed ({UMAP_EXTRA})."
            ),
            anchor="umap",
        )
    figure = figures.code_map_figure(
        embedding,
        distinct.counts,
        distinct.labels,
        encoded.class_names,
        _map_title("UMAP", distinct, encoded.n_bits),
    )
    neighbours = min(15, len(distinct.codes) - 1)
    block = writer.add(
        figure,
        "umap.png",
        "UMAP scatter of the distinct database codes, sized by count, coloured by class",
        _map_caption(
            encoded,
            distinct,
            f"UMAP (metric='hamming' on the bits, n_neighbors={neighbours}, random_state={seed})",
        ),
    )
    return markup.section(heading, block, anchor="umap")


def _class_section(encoded: EncodedSplit, writer: FigureWriter) -> str:
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


def _bits_section(encoded: EncodedSplit, writer: FigureWriter) -> str:
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


def _retrieval_section(encoded: EncodedSplit, seed: int, writer: FigureWriter) -> str:
    found = retrievals(encoded, n_queries=8, k=10, random_state=seed)
    query = encoded.query
    database = encoded.database
    codes = codes_to_hex(encoded.query_codes[found.queries])
    figure = figures.retrieval_figure(
        query.X[found.queries],
        [encoded.label_name(query.y[q]) for q in found.queries],
        database.X[found.indices],
        [[encoded.label_name(database.y[i]) for i in row] for row in found.indices],
        found.distances,
        found.matches,
        query_codes=codes,
    )
    precision = float(found.matches.mean())
    k = found.indices.shape[1]
    block = writer.add(
        figure,
        "retrieval.png",
        f"query images and their top-{k} database images",
        f"{len(found.queries)} queries (seeded choice, seed {seed}), each with its code (hex, "
        f"byte 0 first) under it, and their {k} nearest database items by Hamming distance "
        "(ties broken by database position); green frame: same label as the query, red: "
        f"different. Share with the query's label: {precision:.2f}.",
    )
    text, table = _ties(encoded, found, codes)
    return markup.section("Retrieval examples", block, text, table, anchor="retrieval")


def _ties(encoded: EncodedSplit, found: Retrievals, codes: list[str]) -> tuple[str, str]:
    """Why two queries can show the same row: the paragraph and the table of ties."""
    k = found.indices.shape[1]
    shown = found.shown_at_cut()
    same_rows: dict[int, list[int]] = {}
    for q in range(len(found.queries)):
        same_rows[q] = [
            other
            for other in range(len(found.queries))
            if other != q and np.array_equal(found.indices[q], found.indices[other])
        ]
    rows = []
    for q, query_row in enumerate(found.queries):
        first, last = int(found.distances[q, 0]), int(found.distances[q, -1])
        tie = (
            f"{shown[q]} of {found.tied[q]} at distance {last} shown"
            if found.tied[q] > shown[q]
            else f"all {found.tied[q]} at distance {last} shown"
        )
        twins = ", ".join(
            f"{other + 1} ({'same code' if codes[other] == codes[q] else 'other code'})"
            for other in same_rows[q]
        )
        rows.append(
            [
                str(q + 1),
                encoded.label_name(encoded.query.y[query_row]),
                codes[q],
                str(first) if first == last else f"{first}–{last}",
                tie,
                twins,
            ]
        )
    table = markup.simple_table(
        [
            "query",
            "class",
            "code (hex, byte 0 first)",
            f"distances of the {k} shown",
            "database items tied at the last distance",
            "same results as query",
        ],
        rows,
        css=["", "", "code", "", "", ""],
    )
    cut_in_tie = [q + 1 for q in range(len(found.queries)) if found.tied[q] > shown[q]]
    sentences = [
        "Items at the same Hamming distance are ranked by database position (lowest first), so "
        f"when more items tie at a query's last distance than fit in {k} results, the first "
        "ones by position are shown and the others, just as close, are not."
    ]
    if cut_in_tie:
        sentences.append(
            f"At {encoded.n_bits} bits this happens for {len(cut_in_tie)} of the "
            f"{len(found.queries)} queries ({_join(cut_in_tie)})."
        )
    groups = sorted({tuple(sorted([q, *others])) for q, others in same_rows.items() if others})
    for group in groups:
        names = _join([q + 1 for q in group])
        if len({codes[q] for q in group}) == 1:
            sentences.append(
                f"Queries {names} have the same code, {codes[group[0]]}, so they get the same "
                "ranking and the same results."
            )
        else:
            sentences.append(
                f"Queries {names} show the same results with codes "
                f"{_join([codes[q] for q in group])}: the same items come first for each, and "
                "their ties are broken by database position the same way."
            )
    return f"<p>{escape(' '.join(sentences))}</p>", table


def _join(items: list[Any]) -> str:
    """'1', '1 and 2', '1, 2 and 3'."""
    words = [str(item) for item in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
