"""Histograms of Oriented Gradients, computed with scikit-image.

N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR 2005.

Each image is described by the distribution of its local gradient directions:

1. gradients by centred differences, ``g_r = I[r+1, c] - I[r-1, c]`` and likewise along columns;
   magnitude ``|g|`` and unsigned orientation ``atan2(g_r, g_c) mod 180 degrees``. For colour
   images every pixel takes the gradient of the channel where it is largest (Dalal & Triggs, and
   scikit-image's ``channel_axis``);
2. the image is tiled into cells of ``pixels_per_cell`` pixels; each cell gets a histogram of
   ``orientations`` bins over [0, 180) degrees, each pixel voting with its gradient magnitude;
3. overlapping blocks of ``cells_per_block`` cells (stride one cell) are normalised, by default
   with L2-Hys (L2 norm, values clipped at 0.2, L2 norm again), and concatenated.

The descriptor has ``n_blocks_r * n_blocks_c * cells_per_block[0] * cells_per_block[1] *
orientations`` values, where ``n_blocks = n_cells - cells_per_block + 1`` and
``n_cells = image side // pixels_per_cell`` (pixels beyond the last full cell are not used).

Defaults for small images: the image is cut into a 4 x 4 grid of cells (``pixels_per_cell``
``(h // 4, w // 4)``: 7 x 7 pixels for 28 x 28 MNIST digits, 8 x 8 for 32 x 32 CIFAR images,
2 x 2 for 8 x 8 digits), with 2 x 2-cell blocks, 9 orientations and L2-Hys, giving
3 * 3 * 2 * 2 * 9 = 324 values per image whatever the image size. (HOG features are also the
input of the LSH baseline on Fashion-MNIST in Le-Nhat & Mai's study of hashing for image
retrieval, which does not give its HOG settings.)

Every image is passed to ``skimage.feature.hog``; the images are worked through in batches so a
progress bar can follow them and the output is written in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError
from hashlearn.features.base import ImageFeatureExtractor, check_pair

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")


class HOG(ImageFeatureExtractor):
    """Histogram of Oriented Gradients of every image (``skimage.feature.hog``), ``float32``.

    Parameters
    ----------
    orientations : number of orientation bins over [0, 180) degrees (9, as Dalal & Triggs).
    pixels_per_cell : (rows, cols) of a cell, or an int for square cells; ``None`` (default)
        cuts the image into a 4 x 4 grid of cells, ``(h // 4, w // 4)``.
    cells_per_block : (rows, cols) of cells per normalisation block, or an int; (2, 2).
    block_norm : "L1", "L1-sqrt", "L2" or "L2-Hys" (default).
    batch_size : images per batch (output written in place; affects only the progress bar).
    verbose : show a progress bar for more than 2,000 images.

    Attributes
    ----------
    image_shape_ : (h, w, c), the shape of the fitted images; ``transform`` requires it.
    pixels_per_cell_ : (rows, cols), the cell size used.
    n_features_ : int, values per image.
    """

    name = "hog"

    def __init__(
        self,
        *,
        orientations: int = 9,
        pixels_per_cell: int | tuple[int, int] | None = None,
        cells_per_block: int | tuple[int, int] = (2, 2),
        block_norm: str = "L2-Hys",
        batch_size: int = 256,
        verbose: bool = False,
    ) -> None:
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.batch_size = batch_size
        self.verbose = verbose

    def _prepare(self) -> None:
        check_int(self.orientations, "orientations", minimum=1)
        check_pair(self.cells_per_block, "cells_per_block")
        if self.pixels_per_cell is not None:
            check_pair(self.pixels_per_cell, "pixels_per_cell")
        if self.block_norm not in BLOCK_NORMS:
            raise InvalidInputError(
                f"block_norm must be one of {', '.join(BLOCK_NORMS)}; got {self.block_norm!r}"
            )

    def _fit_shape(self, image_shape: tuple[int, int, int]) -> int:
        h, w, _ = image_shape
        if self.pixels_per_cell is None:
            cell = (max(1, h // 4), max(1, w // 4))
        else:
            cell = check_pair(self.pixels_per_cell, "pixels_per_cell")
        block = check_pair(self.cells_per_block, "cells_per_block")
        n_cells = (h // cell[0], w // cell[1])
        if n_cells[0] < block[0] or n_cells[1] < block[1]:
            raise InvalidInputError(
                f"images of {h} x {w} pixels hold {n_cells[0]} x {n_cells[1]} cells of "
                f"{cell[0]} x {cell[1]} pixels, fewer than one block of {block[0]} x {block[1]} "
                "cells; use smaller pixels_per_cell or cells_per_block"
            )
        self.pixels_per_cell_ = cell
        n_blocks = (n_cells[0] - block[0] + 1, n_cells[1] - block[1] + 1)
        return n_blocks[0] * n_blocks[1] * block[0] * block[1] * int(self.orientations)

    def _transform_batch(self, images: np.ndarray) -> np.ndarray:
        from skimage.feature import hog

        colour = images.shape[3] > 1
        block = check_pair(self.cells_per_block, "cells_per_block")
        out = np.empty((len(images), self.n_features_), dtype=np.float32)
        for i, image in enumerate(images):
            out[i] = hog(
                image if colour else image[..., 0],
                orientations=int(self.orientations),
                pixels_per_cell=self.pixels_per_cell_,
                cells_per_block=block,
                block_norm=self.block_norm,
                feature_vector=True,
                channel_axis=-1 if colour else None,
            )
        return out

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super()._get_state()
        return arrays, {**values, "pixels_per_cell": list(self.pixels_per_cell_)}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super()._set_state(arrays, values)
        self.pixels_per_cell_ = check_pair(values["pixels_per_cell"], "pixels_per_cell")
