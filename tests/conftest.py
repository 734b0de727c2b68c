import numpy as np
import pytest

from hashlearn.datasets import load_dataset


@pytest.fixture(scope="session")
def digits_small():
    """300 real 8x8 digit images (30 per class) with labels, for fast hasher tests."""
    data = load_dataset("digits")
    rng = np.random.default_rng(0)
    idx = np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(data.y == c), 30, replace=False) for c in range(10)]
        )
    )
    return data.X[idx], data.y[idx]
