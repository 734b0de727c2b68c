"""Image folders read into a :class:`Dataset`: one sub-folder per class, a CSV of labels, or a flat
folder of unlabelled images."""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath

import numpy as np

from hashlearn._imaging import image_array, is_grey, upright
from hashlearn._progress import progress
from hashlearn._validation import check_int
from hashlearn.datasets.dataset import Dataset
from hashlearn.exceptions import FileFormatError, InvalidInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_image_folder(
    root: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    color: str = "auto",
    verbose: bool = True,
) -> Dataset:
    """Read a folder of images into a :class:`Dataset`.

    Three layouts: ``root/<class name>/<image file>`` (one label per image); a flat folder
    ``root/<image file>`` with no sub-folders (no labels: ``y`` is None, for unsupervised
    methods); with ``labels_csv``, any images under ``root`` and a CSV that gives each one its
    labels (multi-label).

    Parameters
    ----------
    root : the image folder. Without ``labels_csv`` it holds one sub-folder per class (class
        ``i`` is the ``i``-th sub-folder name in sorted order; ``Dataset.classes`` lists them),
        or only image files (unlabelled). Files with other suffixes than ``IMAGE_SUFFIXES`` and
        hidden files are skipped.
    labels_csv : CSV file with one row ``filename,label1;label2;...`` per image, optionally after
        a header row ``filename,labels``. ``filename`` is the path relative to ``root`` (``a/b.png``)
        or, when unique, a bare file name found anywhere below ``root``. Rows keep their order in
        ``X``; ``classes`` are the sorted label names and ``y`` the (n, n_classes) bool indicator.
    image_size : ``(height, width)`` to resize every image to (bilinear); ``None`` requires all
        images to have one size.
    color : ``"grey"`` (``X`` of shape (n, h, w)), ``"rgb"`` ((n, h, w, 3)) or ``"auto"`` (rgb when
        any image has colour channels).
    verbose : progress bar when there are more than 2,000 files.

    Returns
    -------
    Dataset with ``X`` float32 in [0, 1] and ``y`` int64 class indices, a bool (n, n_classes)
    indicator with ``labels_csv``, or None for a flat folder. ``Dataset.files`` lists the image
    paths relative to ``root`` in the order of ``X``.

    Raises
    ------
    InvalidInputError for a missing root, no images, a folder holding both class sub-folders and
    loose images, or a bad parameter; with
    ``labels_csv``: a missing CSV, a malformed or duplicated row, a row with no labels, a file name
    that matches no image (or several), or images below ``root`` that the CSV does not list.
    FileFormatError naming the file for an unreadable, truncated or oversized image, or one whose
    size differs when ``image_size`` is None.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"image folder {str(root)!r} does not exist or is not a folder")
    if color not in ("auto", "grey", "rgb"):
        raise InvalidInputError(f"color must be 'auto', 'grey' or 'rgb', got {color!r}")
    if image_size is not None:
        if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
            raise InvalidInputError(f"image_size must be (height, width), got {image_size!r}")
        image_size = (
            check_int(image_size[0], "image height", minimum=1, maximum=8192),
            check_int(image_size[1], "image width", minimum=1, maximum=8192),
        )
    if labels_csv is not None:
        paths, y, classes = _multi_label_files(root, Path(labels_csv))
    else:
        paths, y, classes = _class_folder_files(root)
    X = _read_images(paths, image_size=image_size, color=color, verbose=verbose)
    if y is None:
        description = f"image folder {str(root)!r}: {len(X)} unlabelled images"
    else:
        kind = "multi-label " if labels_csv is not None else ""
        description = f"{kind}image folder {str(root)!r}: {len(X)} images in {len(classes)} classes"
    return Dataset(
        name=root.name,
        X=X,
        y=y,
        description=description,
        classes=tuple(classes),
        # 10% queries, and 10% of the rest kept for validation (choosing parameters)
        default_split={"n_query": 0.1, "n_validation": 0.1},
        files=tuple(p.relative_to(root).as_posix() for p in paths),
    )


def _is_image(path: Path) -> bool:
    return (
        path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
    )


def _class_folder_files(root: Path) -> tuple[list[Path], np.ndarray | None, list[str]]:
    """Images of ``root/<class>/``, or of a flat ``root`` (labels None)."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sorted(p for p in root.iterdir() if _is_image(p))
    if loose and classes:
        raise InvalidInputError(
            f"{str(root)!r} holds both images ({loose[0].name!r}, ...) and sub-folders "
            f"({classes[0]!r}, ...): put every image in its class sub-folder (labelled), or all "
            "images in one folder without sub-folders (unlabelled)"
        )
    if loose:
        return loose, None, []
    if not classes:
        raise InvalidInputError(
            f"{str(root)!r} holds no images with suffixes {', '.join(IMAGE_SUFFIXES)} (expected "
            "images, or one sub-folder of images per class)"
        )
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        files += [(p, label) for p in sorted((root / name).iterdir()) if _is_image(p)]
    if not files:
        raise InvalidInputError(
            f"{str(root)!r} holds no images with suffixes {', '.join(IMAGE_SUFFIXES)}"
        )
    return [p for p, _ in files], np.array([label for _, label in files], dtype=np.int64), classes


def _read_label_rows(labels_csv: Path) -> list[tuple[int, str, list[str]]]:
    """``(line number, file name, label names)`` per data row of the CSV."""
    if not labels_csv.is_file():
        raise InvalidInputError(f"labels file {str(labels_csv)!r} does not exist")
    where = repr(str(labels_csv))
    try:
        with open(labels_csv, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"cannot read {where} as UTF-8 CSV: {exc}") from None
    parsed: list[tuple[int, str, list[str]]] = []
    for line, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if line == 1 and [c.lower() for c in cells] == ["filename", "labels"]:
            continue
        if len(cells) != 2 or not cells[0]:
            raise InvalidInputError(
                f"{where} line {line}: expected 'filename,label1;label2', got {row!r}"
            )
        names = [name.strip() for name in cells[1].split(";") if name.strip()]
        if not names:
            raise InvalidInputError(f"{where} line {line}: {cells[0]!r} has no labels")
        parsed.append((line, cells[0], names))
    if not parsed:
        raise InvalidInputError(f"{where} lists no images")
    return parsed


def _multi_label_files(root: Path, labels_csv: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    rows = _read_label_rows(labels_csv)
    where = repr(str(labels_csv))
    images = sorted(
        p
        for p in root.rglob("*")
        if _is_image(p) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    by_relative = {p.relative_to(root).as_posix(): p for p in images}
    by_name: dict[str, list[Path]] = {}
    for p in images:
        by_name.setdefault(p.name, []).append(p)
    paths: list[Path] = []
    seen: dict[Path, int] = {}
    for line, filename, _ in rows:
        key = PurePosixPath(filename.replace("\\", "/")).as_posix()  # ./a/b.png, a\b.png -> a/b.png
        path = by_relative.get(key)
        if path is None:
            matches = by_name.get(key, []) if "/" not in key else []
            if len(matches) > 1:
                raise InvalidInputError(
                    f"{where} line {line}: {filename!r} matches {len(matches)} images below "
                    f"{str(root)!r}; give its path relative to the folder"
                )
            if not matches:
                raise InvalidInputError(
                    f"{where} line {line}: no image {filename!r} below {str(root)!r}"
                )
            path = matches[0]
        if path in seen:
            raise InvalidInputError(
                f"{where} line {line}: {filename!r} is listed again (first on line {seen[path]})"
            )
        seen[path] = line
        paths.append(path)
    unlisted = [p for p in images if p not in seen]
    if unlisted:
        raise InvalidInputError(
            f"{len(unlisted)} image(s) below {str(root)!r} have no row in {where}, first "
            f"{unlisted[0].relative_to(root).as_posix()!r}; list them or move them out"
        )
    classes = sorted({name for _, _, names in rows for name in names})
    column = {name: i for i, name in enumerate(classes)}
    y = np.zeros((len(rows), len(classes)), dtype=bool)
    for i, (_, _, names) in enumerate(rows):
        y[i, [column[name] for name in names]] = True
    return paths, y, classes


def _read_images(
    paths: list[Path], *, image_size: tuple[int, int] | None, color: str, verbose: bool
) -> np.ndarray:
    """Decode ``paths`` into one float32 array in [0, 1] (see :func:`load_image_folder`), each
    picture converted as the encoder converts the pictures it codes (:mod:`hashlearn._imaging`)."""
    from PIL import Image, UnidentifiedImageError

    images: list[np.ndarray] = []
    greys: list[bool] = []
    for path in progress(
        paths, desc="reading images", unit="image", disable=not verbose or len(paths) <= 2000
    ):
        try:
            with Image.open(path) as image:
                image.load()
                image = upright(image)
                grey = is_grey(image)
                channels = 1 if color == "grey" or (color == "auto" and grey) else 3
                array = image_array(image, channels, image_size)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
            raise FileFormatError(f"cannot read image {str(path)!r}: {exc}") from None
        if images and array.shape[:2] != images[0].shape[:2]:
            raise FileFormatError(
                f"image {str(path)!r} is {array.shape[1]}x{array.shape[0]} but "
                f"{str(paths[0])!r} is {images[0].shape[1]}x{images[0].shape[0]}; pass image_size "
                "to resize them all to one size"
            )
        images.append(array)
        greys.append(grey)
    if color == "rgb" or (color == "auto" and not all(greys)):
        images = [a if a.shape[2] == 3 else np.repeat(a, 3, axis=2) for a in images]
    X = np.stack(images)
    return X[..., 0] if X.shape[3] == 1 else X
