"""The report's sections on one model: its codes of a dataset's split as a t-SNE map, the
distances between class median codes, how the codes use their bits, and retrieval examples."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import numpy as np

import hashlearn.report.figures as figures
import hashlearn.report.html as markup
from hashlearn.codes import code_statistics
from hashlearn.datasets import list_datasets
from hashlearn.datasets.load import ARRAYS_PREFIX, FOLDER_PREFIX
from hashlearn.evaluation import get_protocol
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher, Hasher
from hashlearn.report.model import (
    EncodedSplit,
    class_distances,
    encode_split,
    needs_features,
    retrievals,
    tsne_embedding,
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


def _tsne_section(encoded: EncodedSplit, seed: int, max_points: int, writer: FigureWriter) -> str:
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
