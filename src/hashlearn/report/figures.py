"""The report's figures, drawn with matplotlib's object API (no pyplot, no global state).

Every function returns a :class:`matplotlib.figure.Figure` attached to an Agg canvas;
:func:`figure_png` turns it into PNG bytes. Colours follow the method (the same method has the
same colour in every figure) and line styles the code length.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from hashlearn.report.results import Group, mean_curve

__all__ = [
    "bit_usage_figure",
    "class_distance_figure",
    "code_map_figure",
    "figure_png",
    "pr_figure",
    "radius_figure",
    "retrieval_figure",
    "select_radius_groups",
]

MATCH_COLOR = "#2ca02c"  # retrieved item with the query's label
MISMATCH_COLOR = "#d62728"
CLOSEST_COLOR = "#ffffff"
FARTHEST_COLOR = "#ff00ff"
LINE_STYLES = ("-", "--", ":", "-.")
DPI = 100


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure) -> bytes:
    """Render ``figure`` as PNG bytes (Agg, 100 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _method_colors(labels: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    return {label: palette[i % len(palette)] for i, label in enumerate(dict.fromkeys(labels))}


def _bits_styles(bits: Sequence[int]) -> dict[int, str]:
    return {b: LINE_STYLES[i % len(LINE_STYLES)] for i, b in enumerate(sorted(set(bits)))}


# -- results figures ----------------------------------------------------------------------------


def pr_figure(groups: Sequence[Group]) -> Figure | None:
    """Precision against recall of the radius sweep: one panel per code length, a line per method.

    Parameters
    ----------
    groups : the output of :func:`hashlearn.report.results.group_rows`.

    Returns
    -------
    Figure, or None when no group has a ``pr`` curve.
    """
    curves = [(g, mean_curve(g, "pr")) for g in groups]
    curves = [(g, c) for g, c in curves if c is not None]
    if not curves:
        return None
    bits = sorted({g.n_bits for g, _ in curves})
    colors = _method_colors([g.label for g in groups])
    ncols = min(len(bits), 3)
    nrows = -(-len(bits) // ncols)
    figure = _new_figure(4.2 * ncols, 3.6 * nrows)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, n_bits in zip(axes, bits):
        for group, curve in curves:
            if group.n_bits == n_bits:
                ax.plot(
                    curve["recall"],
                    curve["precision"],
                    marker=".",
                    color=colors[group.label],
                    label=group.label,
                )
        ax.set(title=f"{n_bits} bits", xlabel="recall", ylabel="precision")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(bits) :]:
        ax.set_axis_off()
    return figure


def select_radius_groups(groups: Sequence[Group], max_lines: int = 12) -> list[Group]:
    """Groups whose ``radius`` curve is drawn: all of them when there are at most ``max_lines``,
    otherwise those of the code length with the most curves (the longest among equals)."""
    with_curve = [g for g in groups if mean_curve(g, "radius") is not None]
    if len(with_curve) <= max_lines:
        return with_curve
    counts: dict[int, int] = {}
    for group in with_curve:
        counts[group.n_bits] = counts.get(group.n_bits, 0) + 1
    n_bits = max(counts, key=lambda b: (counts[b], b))
    return [g for g in with_curve if g.n_bits == n_bits]


def radius_figure(groups: Sequence[Group]) -> Figure | None:
    """Hash-table lookup within a Hamming radius: P@10 (left) and query time (right) against the
    radius, one line per (method, code length) of ``groups`` (see :func:`select_radius_groups`).

    Returns
    -------
    Figure, or None when no group has a ``radius`` curve with ``P@10`` or ``query_ms``.
    """
    curves = [(g, mean_curve(g, "radius")) for g in groups]
    curves = [(g, c) for g, c in curves if c is not None and ("P@10" in c or "query_ms" in c)]
    if not curves:
        return None
    colors = _method_colors([g.label for g, _ in curves])
    styles = _bits_styles([g.n_bits for g, _ in curves])
    figure = _new_figure(10, 4 + 0.2 * -(-len(curves) // 4))
    left, right = figure.subplots(1, 2)
    for group, curve in curves:
        style = dict(color=colors[group.label], linestyle=styles[group.n_bits], marker=".")
        name = f"{group.label}, {group.n_bits} bits"
        if "P@10" in curve:
            left.plot(curve["radius"], curve["P@10"], label=name, **style)
        if "query_ms" in curve:
            right.plot(curve["radius"], curve["query_ms"], label=name, **style)
    left.set(title="P@10 of the first 10 candidates", xlabel="Hamming radius", ylabel="P@10")
    left.set_ylim(-0.02, 1.02)
    right.set(title="lookup time", xlabel="Hamming radius", ylabel="ms per query")
    times = np.concatenate([c["query_ms"] for _, c in curves if "query_ms" in c] or [[]])
    if times.size and np.nanmin(times) > 0:
        right.set_yscale("log")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    handles = {}
    for ax in (left, right):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(4, len(handles)),
        fontsize=8,
    )
    return figure


# -- model figures ------------------------------------------------------------------------------


def code_map_figure(
    embedding: np.ndarray,
    counts: np.ndarray,
    labels: np.ndarray,
    class_names: dict[int, str],
    title: str,
) -> Figure:
    """Scatter of a 2-D map of distinct codes: one marker per distinct code, its area proportional
    to how many codes equal it, coloured by its (most common) class, with a legend of class names
    and one of marker sizes.

    Parameters
    ----------
    embedding : float (m, 2) coordinates of the m distinct codes.
    counts : int (m,) how many codes each stands for.
    labels : int (m,) class of each (the most common one among its codes).
    class_names : label -> name shown in the legend.
    title : the axes' title.
    """
    counts = np.asarray(counts)
    figure = _new_figure(7.5, 6)
    ax = figure.subplots()
    area = _marker_area(counts, counts.max())
    order = np.argsort(-counts, kind="stable")  # large markers first, small ones drawn on top
    classes = np.unique(labels)
    palette = "tab10" if len(classes) <= 10 else "tab20"
    for i, label in enumerate(classes):
        members = order[labels[order] == label]
        ax.scatter(
            embedding[members, 0],
            embedding[members, 1],
            s=area[members],
            alpha=0.6,
            color=_palette_color(palette, i),
            edgecolors="white",
            linewidths=0.4,
            label=class_names.get(int(label), str(label)),
        )
    ax.set(title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.margins(0.06)
    class_legend = ax.legend(
        title="class", fontsize=8, loc="upper left", bbox_to_anchor=(1, 1), markerscale=1
    )
    for handle in class_legend.legend_handles:
        handle.set_sizes([30])
    ax.add_artist(class_legend)
    references = _size_references(int(counts.max()))
    handles = [
        Line2D(
            [],
            [],
            linestyle="",
            marker="o",
            markersize=float(np.sqrt(_marker_area(np.array([c]), counts.max())[0])),
            markerfacecolor="#999999",
            markeredgecolor="white",
            label=f"{c} code{'s' if c > 1 else ''}",
        )
        for c in references
    ]
    ax.legend(
        handles=handles,
        title="codes per point",
        fontsize=8,
        loc="lower left",
        bbox_to_anchor=(1, 0),
        labelspacing=1.2,
        borderpad=0.9,
    )
    return figure


def _marker_area(counts: np.ndarray, largest: int) -> np.ndarray:
    """Marker areas in points^2: proportional to the count, from 8 for one code up to 400 for
    the largest count (or 8 per code when the largest count is under 50)."""
    per_code = min(8.0, 400.0 / max(int(largest), 1))
    return np.maximum(per_code * np.asarray(counts, dtype=np.float64), 4.0)


def _size_references(largest: int) -> list[int]:
    """Up to three counts for the size legend: 1, a round middle value and the largest."""
    if largest <= 1:
        return [1]
    middle = [m for m in (2, 5, 10, 20, 50, 100, 200, 500, 1000) if 1 < m < largest]
    picks = [1] + ([middle[len(middle) // 2]] if middle else []) + [largest]
    return sorted(set(picks))


def _palette_color(name: str, i: int) -> tuple[float, ...]:
    from matplotlib import colormaps

    cmap = colormaps[name]
    return tuple(cmap(i % cmap.N))


def class_distance_figure(
    distances: np.ndarray,
    names: Sequence[str],
    closest: tuple[int, int],
    farthest: tuple[int, int],
    n_bits: int,
) -> Figure:
    """Heat map of Hamming distances between class median codes, every cell annotated, the
    closest and the farthest pair of classes outlined.

    Parameters
    ----------
    distances : int (c, c) symmetric distance matrix.
    names : the c class names, in matrix order.
    closest, farthest : matrix positions ``(i, j)`` of the two pairs (both cells are outlined).
    n_bits : code length (the colour scale runs from 0 to it).
    """
    size = max(4.5, 0.55 * len(names) + 2.5)
    figure = _new_figure(size + 1, size)
    ax = figure.subplots()
    image = ax.imshow(distances, cmap="viridis", vmin=0, vmax=n_bits)
    figure.colorbar(image, ax=ax, label="Hamming distance", shrink=0.8)
    middle = n_bits / 2
    for (i, j), value in np.ndenumerate(distances):
        ax.text(
            j,
            i,
            str(int(value)),
            ha="center",
            va="center",
            fontsize=8,
            color="black" if value > middle else "white",
        )
    for (i, j), color, style in ((closest, CLOSEST_COLOR, "-"), (farthest, FARTHEST_COLOR, "--")):
        for row, col in ((i, j), (j, i)):
            ax.add_patch(
                Rectangle(
                    (col - 0.5, row - 0.5),
                    1,
                    1,
                    fill=False,
                    edgecolor=color,
                    linestyle=style,
                    linewidth=3,
                )
            )
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set(title="Hamming distance between class median codes", xlabel="class", ylabel="class")
    ax.set_facecolor("#808080")
    handles = [
        Line2D([], [], color=CLOSEST_COLOR, linewidth=3, label="closest pair"),
        Line2D([], [], color=FARTHEST_COLOR, linewidth=3, linestyle="--", label="farthest pair"),
    ]
    legend = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)
    legend.get_frame().set_facecolor("#b0b0b0")
    return figure


def bit_usage_figure(bit_means: np.ndarray, correlation: np.ndarray) -> Figure:
    """Left: the share of codes with each bit set, against the balanced 0.5. Right: the
    absolute correlation between every pair of bits."""
    n_bits = len(bit_means)
    figure = _new_figure(max(9.0, 0.12 * n_bits + 6), 4.0)
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    positions = np.arange(n_bits)
    left.bar(positions, bit_means, width=0.8, color="#4c72b0")
    left.axhline(0.5, color="black", linewidth=1, linestyle="--", label="balanced (0.5)")
    left.set(
        xlim=(-0.7, n_bits - 0.3),
        ylim=(0, 1),
        xlabel="bit",
        ylabel="share of codes with the bit set",
        title="Bit balance",
    )
    left.legend(loc="upper right", fontsize=8)
    image = right.imshow(np.abs(correlation), cmap="magma", vmin=0, vmax=1)
    right.set(title="|correlation| between bits", xlabel="bit", ylabel="bit")
    figure.colorbar(image, ax=right, shrink=0.8)
    return figure


def _show_image(ax: Axes, image: np.ndarray) -> None:
    """Grey images with a grey colormap on [0, 1]; RGB(A) images as they are."""
    picture = np.asarray(image)
    if picture.ndim == 3 and picture.shape[-1] == 1:
        picture = picture[..., 0]
    if np.issubdtype(picture.dtype, np.floating):
        picture = np.clip(picture, 0.0, 1.0)
    if picture.ndim == 2:
        vmax = 1.0 if np.issubdtype(picture.dtype, np.floating) else 255
        ax.imshow(picture, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
    else:
        ax.imshow(picture, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _frame(ax: Axes, color: str, width: float = 3.0) -> None:
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(width)


def retrieval_figure(
    query_images: np.ndarray,
    query_names: Sequence[str],
    result_images: np.ndarray,
    result_names: Sequence[Sequence[str]],
    distances: np.ndarray,
    matches: np.ndarray,
    query_codes: Sequence[str] | None = None,
) -> Figure:
    """One row per query: the query image (numbered from 1, its code under it when given), then
    its ranked results framed green (same label as the query) or red (different label).

    Parameters
    ----------
    query_images : (nq, h, w) or (nq, h, w, c) images.
    query_names : class name of each query.
    result_images : (nq, k, h, w) or (nq, k, h, w, c) images of the ranked results.
    result_names : class names of the results, (nq, k).
    distances : int (nq, k) Hamming distances of the results.
    matches : bool (nq, k), True where a result has the query's label.
    query_codes : the queries' codes as text (hex), or None.
    """
    nq, k = distances.shape
    figure = _new_figure(1.05 * (k + 1), 1.25 * nq)
    axes = figure.subplots(nq, k + 1, squeeze=False)
    for q in range(nq):
        _show_image(axes[q, 0], query_images[q])
        _frame(axes[q, 0], "black")
        axes[q, 0].set_title(f"query {q + 1}: {query_names[q]}", fontsize=7, fontweight="bold")
        if query_codes is not None:
            code = query_codes[q]
            axes[q, 0].set_xlabel(
                code if len(code) <= 16 else code[:15] + "…", fontsize=6, family="monospace"
            )
        for j in range(k):
            ax = axes[q, j + 1]
            _show_image(ax, result_images[q, j])
            _frame(ax, MATCH_COLOR if matches[q, j] else MISMATCH_COLOR)
            ax.set_title(f"{result_names[q][j]} d={int(distances[q, j])}", fontsize=7)
    return figure
