"""The GIST scene descriptor: Gabor energies averaged on a coarse grid.

A. Oliva and A. Torralba, "Modeling the shape of the scene: a holistic representation of the
spatial envelope", International Journal of Computer Vision 42(3): 145-175, 2001. The constants
below are those of the authors' reference MATLAB implementation (``LMgist`` / ``prefilt`` /
``createGabor`` of the LabelMe toolbox), re-derived here as formulas and computed with numpy FFTs
for a whole batch of images at once.

For every image:

1. **Grey, square, stretched.** Channels are averaged; the central square (side ``min(h, w)``) is
   resized bilinearly to ``image_size`` x ``image_size`` (anti-aliased when shrinking); the
   intensities are stretched to [0, 255], ``I = 255 (I - min I) / (max I - min I)`` (a constant
   image gives zeros). The descriptor is therefore unchanged by a global brightness offset or
   contrast gain.
2. **Prefilter** (whitening and local contrast normalisation). ``L = log(1 + I)`` is padded by
   5 mirrored pixels to an even side ``m``; with the Gaussian low-pass
   ``H(f) = exp(-|f|^2 / s^2)``, ``s = fc / sqrt(ln 2)`` and ``|f|`` in cycles per (padded) image,
   so that ``H = 1/2`` at ``|f| = fc`` (``prefilter_fc = 4``), the whitened image is
   ``W = L - H * L`` and the output ``P = W / (0.2 + sqrt(|H * W^2|))`` (``*``: filtering), cropped
   back to the image.
3. **Gabor bank in the frequency domain.** ``P`` is padded by ``boundary_extension`` mirrored
   pixels on each side to side ``n``; its 2-D DFT is multiplied by the transfer function of
   every filter, for scale ``s = 0, 1, ...`` with ``K_s`` orientations and ``k = 0 .. K_s - 1``::

       G_sk(f) = exp(-10 * 0.35 * (|f| / f_s - 1)^2  -  2 * pi * sigma_s * theta_k(f)^2)

   with ``|f|`` in cycles per pixel, centre frequencies ``f_s = 0.3 / 1.85^s`` (0.3, 0.162,
   0.088, 0.047 cycles per pixel for four scales), angular width ``sigma_s = 16 K_s^2 / 32^2``
   and ``theta_k(f) = angle(f) + pi k / K_s`` wrapped into [-pi, pi). Each ``G_sk`` covers one
   side of the frequency plane, so the filtered image is complex and its modulus is the local
   energy (amplitude) of the Gabor response; this is why a full ``fft2``, not ``rfft2``, is used.
4. **Grid averages.** The modulus, cropped to the image, is averaged over an
   ``n_blocks`` x ``n_blocks`` grid of blocks (edges at ``floor(i * image_size / n_blocks)``).

The descriptor lists, for every scale and then every orientation, the ``n_blocks^2`` block
averages row by row: ``sum(orientations_per_scale) * n_blocks^2`` values, 4 * 8 * 16 = 512 by
default.

Defaults for small (CIFAR-size) images: ``image_size = 32`` and ``boundary_extension =
image_size // 2``. The reference pads by 32 pixels, a size chosen for its 128 or 256-pixel images
(the filters are fixed in cycles per pixel). Padding an image of even side ``S`` by ``S / 2``
mirrored pixels on each side makes the padded image exactly one period of the image's infinite
mirror extension, so the circular wrap-around of the FFT joins mirrored copies seamlessly; the
FFTs are 64 x 64 for 32-pixel images rather than the reference's 96 x 96, in about half the
time. Pass ``boundary_extension=32`` for the reference padding (descriptors then differ by about
0.1%).

Only the image part of each filtered (padded) image is needed, so the inverse 2-D DFT is done as
two 1-D passes: along every row, keeping only the columns inside the image, then along those
columns only; a quarter less work than a full ``ifft2``, the same result.
"""

from __future__ import annotations

import numpy as np

from hashlearn._validation import check_float, check_int
from hashlearn.exceptions import InvalidInputError
from hashlearn.features.base import ImageFeatureExtractor, to_gray

# Reference constants (Oliva & Torralba's createGabor / prefilt).
_RADIAL_WIDTH = 10 * 0.35  # radial term: exp(-3.5 (|f| / f_s - 1)^2)
_HIGHEST_FREQUENCY = 0.3  # f_0, cycles per pixel
_SCALE_RATIO = 1.85  # f_s = f_0 / 1.85^s
_PREFILTER_PAD = 5  # mirrored pixels around the image before the prefilter
_CONTRAST_FLOOR = 0.2  # P = W / (0.2 + local std)

# Bounds that keep the filter bank (side^2 float32 values per filter, side = image_size + 2 x
# extension <= 3 x 512) under 1 GB whatever a model file or a caller asks for.
MAX_IMAGE_SIZE = 512
MAX_SCALES = 8
MAX_ORIENTATIONS = 32
MAX_FILTERS = 64


def gabor_transfer_functions(n: int, orientations_per_scale: tuple[int, ...]) -> np.ndarray:
    """Transfer functions of the Gabor bank on an ``n`` x ``n`` DFT grid (numpy's FFT order).

    Returns a ``float32`` array of shape ``(sum(orientations_per_scale), n, n)``: scale after
    scale, orientation ``k = 0 .. K_s - 1`` within each (see the module docstring for the formula).
    """
    freq = np.fft.fftfreq(n)  # cycles per pixel
    fy, fx = freq[:, None], freq[None, :]
    radius = np.hypot(fx, fy)
    angle = np.arctan2(fy, fx)
    filters = []
    for scale, n_orientations in enumerate(orientations_per_scale):
        centre = _HIGHEST_FREQUENCY / _SCALE_RATIO**scale
        sigma = 16.0 * n_orientations**2 / 32.0**2
        radial = _RADIAL_WIDTH * (radius / centre - 1.0) ** 2
        for k in range(n_orientations):
            theta = np.mod(angle + np.pi * k / n_orientations + np.pi, 2 * np.pi) - np.pi
            filters.append(np.exp(-radial - 2.0 * np.pi * sigma * theta**2))
    return np.stack(filters).astype(np.float32)


def prefilter(images: np.ndarray, fc: float) -> np.ndarray:
    """Whitening and local contrast normalisation of ``(b, h, w)`` images in [0, 255].

    ``L = log(1 + I)``; ``W = L - H * L``; ``P = W / (0.2 + sqrt(|H * W^2|))`` with the Gaussian
    low-pass ``H(f) = exp(-|f|^2 / s^2)``, ``s = fc / sqrt(ln 2)``, ``|f|`` in cycles per padded
    image (5 mirrored pixels each side, side rounded up to even). Returns ``float64`` ``(b, h, w)``.
    """
    _, h, w = images.shape
    pad = _PREFILTER_PAD
    side = max(h, w) + 2 * pad
    side += side % 2
    padded = np.pad(
        np.log1p(images.astype(np.float64)),
        ((0, 0), (pad, side - h - pad), (pad, side - w - pad)),
        mode="symmetric",
    )
    s = fc / np.sqrt(np.log(2.0))
    fy = np.fft.fftfreq(side)[:, None] * side  # cycles per padded image
    fx = np.fft.rfftfreq(side)[None, :] * side
    lowpass = np.exp(-(fx**2 + fy**2) / s**2)

    def smooth(x: np.ndarray) -> np.ndarray:
        return np.fft.irfft2(np.fft.rfft2(x) * lowpass, s=(side, side))

    whitened = padded - smooth(padded)
    local_std = np.sqrt(np.abs(smooth(whitened**2)))
    output = whitened / (_CONTRAST_FLOOR + local_std)
    return output[:, pad : pad + h, pad : pad + w]


def block_means(images: np.ndarray, n_blocks: int) -> np.ndarray:
    """Means of ``(b, h, w)`` images over a grid of blocks: ``(b, n_blocks, n_blocks)``.

    Block edges are at ``floor(i * side / n_blocks)``, ``i = 0 .. n_blocks``.
    """
    _, h, w = images.shape
    rows = np.arange(n_blocks + 1) * h // n_blocks
    cols = np.arange(n_blocks + 1) * w // n_blocks
    sums = np.add.reduceat(np.add.reduceat(images, rows[:-1], axis=1), cols[:-1], axis=2)
    return sums / (np.diff(rows)[:, None] * np.diff(cols)[None, :])


def square_resize(images: np.ndarray, size: int) -> np.ndarray:
    """Central square crop of ``(b, h, w)`` images, resized bilinearly to ``(b, size, size)``."""
    _, h, w = images.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[:, top : top + side, left : left + side]
    if side == size:
        return images
    from skimage.transform import resize

    return resize(
        images,
        (len(images), size, size),
        order=1,
        mode="symmetric",
        anti_aliasing=side > size,
        preserve_range=True,
    ).astype(np.float32)


class GIST(ImageFeatureExtractor):
    """GIST descriptor of every image (Oliva & Torralba, IJCV 2001), ``float32``.

    Parameters
    ----------
    image_size : side of the square grey image the descriptor is computed on (32; the
        reference uses 128 or 256 for photographs).
    orientations_per_scale : orientations at each scale, finest first ((8, 8, 8, 8), as the
        reference).
    n_blocks : the energies are averaged on an ``n_blocks`` x ``n_blocks`` grid (4, as the
        reference).
    prefilter_fc : half-amplitude frequency of the prefilter's Gaussian, in cycles per image
        (4, as the reference).
    boundary_extension : mirrored pixels added on each side before the Gabor filtering; ``None``
        (default) for ``image_size // 2``, a seamless mirror extension (the reference uses 32,
        see the module docstring).
    batch_size : images filtered together (memory: about ``batch_size * (image_size +
        2 * boundary_extension)^2 * 24`` bytes).
    verbose : show a progress bar for more than 2,000 images.

    Attributes
    ----------
    image_shape_ : (h, w, c), the shape of the fitted images; ``transform`` requires it.
    n_features_ : int, ``sum(orientations_per_scale) * n_blocks^2`` (512 by default).

    With the defaults a descriptor costs about 2 ms of one CPU core (32 inverse FFTs of
    64 x 64), dominated by the FFTs; ``boundary_extension=32`` doubles that.
    """

    name = "gist"

    def __init__(
        self,
        *,
        image_size: int = 32,
        orientations_per_scale: tuple[int, ...] = (8, 8, 8, 8),
        n_blocks: int = 4,
        prefilter_fc: float = 4.0,
        boundary_extension: int | None = None,
        batch_size: int = 128,
        verbose: bool = False,
    ) -> None:
        self.image_size = image_size
        self.orientations_per_scale = orientations_per_scale
        self.n_blocks = n_blocks
        self.prefilter_fc = prefilter_fc
        self.boundary_extension = boundary_extension
        self.batch_size = batch_size
        self.verbose = verbose

    def _orientations(self) -> tuple[int, ...]:
        value = self.orientations_per_scale
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise InvalidInputError(
                f"orientations_per_scale must be a non-empty sequence of ints, e.g. (8, 8, 8, 8); "
                f"got {value!r}"
            )
        if len(value) > MAX_SCALES:
            raise InvalidInputError(
                f"orientations_per_scale has {len(value)} scales; at most {MAX_SCALES}"
            )
        counts = tuple(
            check_int(k, f"orientations_per_scale[{i}]", minimum=1, maximum=MAX_ORIENTATIONS)
            for i, k in enumerate(value)
        )
        if sum(counts) > MAX_FILTERS:
            raise InvalidInputError(
                f"orientations_per_scale asks for {sum(counts)} filters; at most {MAX_FILTERS}"
            )
        return counts

    def _prepare(self) -> None:
        orientations = self._orientations()
        n_blocks = check_int(self.n_blocks, "n_blocks", minimum=1, maximum=MAX_IMAGE_SIZE)
        check_int(self.image_size, "image_size", minimum=max(n_blocks, 2), maximum=MAX_IMAGE_SIZE)
        check_float(self.prefilter_fc, "prefilter_fc", minimum=0.0, strict_minimum=True)
        self._extension = (
            int(self.image_size) // 2
            if self.boundary_extension is None
            else check_int(
                self.boundary_extension,
                "boundary_extension",
                minimum=0,
                maximum=MAX_IMAGE_SIZE,
            )
        )
        side = int(self.image_size) + 2 * self._extension
        self._transfer = gabor_transfer_functions(side, orientations)

    def _fit_shape(self, image_shape: tuple[int, int, int]) -> int:
        return len(self._transfer) * int(self.n_blocks) ** 2

    def _transform_batch(self, images: np.ndarray) -> np.ndarray:
        size, extension, n_blocks = int(self.image_size), self._extension, int(self.n_blocks)
        grey = square_resize(to_gray(images), size)
        low = grey.min(axis=(1, 2), keepdims=True)
        span = grey.max(axis=(1, 2), keepdims=True) - low
        grey = (grey - low) * np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
        filtered = prefilter(grey, float(self.prefilter_fc)).astype(np.float32)
        padded = np.pad(filtered, ((0, 0), (extension,) * 2, (extension,) * 2), mode="symmetric")
        spectrum = np.fft.fft2(padded)  # complex64
        inner = slice(extension, extension + size)
        out = np.empty((len(images), len(self._transfer), n_blocks * n_blocks), np.float32)
        for k, transfer in enumerate(self._transfer):
            # ifft2 cropped to the image, as two 1-D passes that skip the padding columns.
            columns = np.fft.ifft(spectrum * transfer, axis=2)[:, :, inner]
            response = np.fft.ifft(columns, axis=1)[:, inner, :]
            out[:, k] = block_means(np.abs(response), n_blocks).reshape(len(images), -1)
        return out.reshape(len(images), -1)
