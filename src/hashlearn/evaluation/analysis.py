"""Looking at codes per class: median codes and the Hamming distances between them."""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_labels
from hashlearn.codes import check_codes, hamming_distance, pack_bits, unpack_bits
from hashlearn.exceptions import InvalidInputError


def class_median_codes(codes: Any, labels: Any, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class median code: bit j is 1 when at least half of the class's codes have bit j set.

    Parameters
    ----------
    codes : uint8 (n, ceil(n_bits / 8)) packed codes.
    labels : int (n,) class labels.
    n_bits : code length.

    Returns
    -------
    classes : int64 (c,) sorted class labels present.
    medians : uint8 (c, ceil(n_bits / 8)) packed median codes (a tie, exactly half, gives 1,
        the same as taking ``np.median`` of the bits and rounding 0.5 up).
    """
    codes = check_codes(codes, n_bits)
    labels = check_labels(labels, len(codes), "labels")
    if labels.ndim != 1:
        raise InvalidInputError("class_median_codes needs single-label (1-D) labels")
    if len(codes) == 0:
        raise InvalidInputError("codes is empty")
    bits = unpack_bits(codes, n_bits).astype(np.float64)
    classes = np.unique(labels)
    medians = np.stack([(np.median(bits[labels == c], axis=0) >= 0.5) for c in classes]).astype(
        np.uint8
    )
    return classes, pack_bits(medians)


def extreme_class_pairs(
    classes: np.ndarray, medians: np.ndarray
) -> dict[str, tuple[int, int, int]]:
    """Closest and farthest pair of classes by Hamming distance between their median codes.

    Returns ``{"closest": (class_a, class_b, distance), "farthest": (...)}``; among equal
    distances the pair that comes first in (class_a, class_b) order is reported.
    """
    if len(classes) < 2:
        raise InvalidInputError("need at least two classes to compare")
    distances = hamming_distance(medians, medians)
    pairs = [
        (int(distances[i, j]), i, j)
        for i in range(len(classes))
        for j in range(i + 1, len(classes))
    ]
    closest = min(pairs, key=lambda p: (p[0], p[1], p[2]))
    farthest = min(pairs, key=lambda p: (-p[0], p[1], p[2]))
    return {
        "closest": (int(classes[closest[1]]), int(classes[closest[2]]), closest[0]),
        "farthest": (int(classes[farthest[1]]), int(classes[farthest[2]]), farthest[0]),
    }
