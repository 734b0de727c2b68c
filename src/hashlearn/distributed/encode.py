"""A folder of image files encoded on a Ray cluster, in shards that a rerun does not redo.

Layout of the output folder::

    OUT/job.json                 what the shards are made from (model, files, shard size): a
                                 rerun of the same job keeps the finished shards
    OUT/files.json               the folder's image files (relative paths), as the workers read
                                 them
    OUT/shards/part-00000.npz    codes uint8 (n, code_size), paths str (n,), positions int64 (n,)
                                 (of each file in the folder's sorted file list), skipped_paths,
                                 skipped_reasons str (m,), job str (): one shard of
                                 ``shard_size`` files, written atomically by the worker that
                                 encoded it
    OUT/codes.npz                all codes, ids, paths and root, as ``hashlearn encode --images``
                                 writes them (:func:`~hashlearn.encoding.write_image_codes`)

Ray Data reads the shards' file ranges and hands them to a pool of actors, each holding the
model (on a GPU when the cluster has them); every actor decodes and encodes its files with
:func:`~hashlearn.encoding.encode_file_list`, the function ``hashlearn encode`` runs in one
process, so the codes are the same. Ids are given once all shards are in, over the whole list
of files that read, as in one process (:func:`~hashlearn.encoding.assemble_image_codes`).

On a cluster of several machines, the model file, the images folder and ``OUT`` must be on
storage every machine sees under the same path (the workers read the model and the file list
from it: they are not sent through Ray).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write, check_input_file, read_arrays
from hashlearn._json import read_json_file
from hashlearn._progress import progress
from hashlearn._validation import check_int
from hashlearn.distributed._ray import connect, worker_error
from hashlearn.encoding import (
    EncodedFiles,
    ImageCodes,
    ImageEncoder,
    assemble_image_codes,
    encode_file_list,
    image_encoding_job,
    write_image_codes,
)
from hashlearn.encoding.files import MAX_DECODE_BYTES
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.hashers import load_hasher

__all__ = ["DistributedCodes", "encode_files"]

# the list of the folder's image files that the workers read (10 million names: about 1 GiB)
MAX_FILE_LIST_BYTES = 1 << 31


@dataclass(frozen=True)
class DistributedCodes:
    """What :func:`encode_files` produced.

    Attributes
    ----------
    result : ImageCodes
        The codes, ids and paths of the folder (as :func:`~hashlearn.encoding.encode_image_files`
        returns them), with the unreadable files in ``result.skipped``.
    codes_path : Path
        ``OUT/codes.npz``.
    n_shards : int
        Shards of the job.
    reused : int
        Shards found finished by an earlier run and not encoded again.
    """

    result: ImageCodes
    codes_path: Path
    n_shards: int
    reused: int


def _job(model_path: Path, folder: Path, files: list[Path], settings: dict[str, Any]) -> dict:
    """The description of a job: a shard written for another job is never reused."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file.relative_to(folder).as_posix()}|{stat.st_size}|{stat.st_mtime_ns};".encode()
        )
    return {
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "root": os.fspath(folder),
        "files_sha256": digest.hexdigest(),
        "n_files": len(files),
        **settings,
    }


def _shard_path(out: Path, shard: int) -> Path:
    return out / "shards" / f"part-{shard:05d}.npz"


def _read_shard(path: Path, job_id: str) -> EncodedFiles | None:
    """A finished shard of this job, or None (absent, unreadable, or of another job)."""
    if not path.is_file():
        return None
    try:
        arrays = read_arrays(path)
    except InvalidInputError:
        return None
    if str(arrays.get("job", "")) != job_id:
        return None
    return EncodedFiles(
        codes=arrays["codes"],
        kept=[str(p) for p in arrays["paths"]],
        skipped=list(zip(map(str, arrays["skipped_paths"]), map(str, arrays["skipped_reasons"]))),
    )


def _write_shard(path: Path, part: EncodedFiles, positions: np.ndarray, job_id: str) -> None:
    with atomic_write(path) as handle:
        np.savez(
            handle,
            codes=part.codes,
            paths=np.array(part.kept, dtype=str),
            positions=positions.astype(np.int64),
            skipped_paths=np.array([p for p, _ in part.skipped], dtype=str),
            skipped_reasons=np.array([r for _, r in part.skipped], dtype=str),
            job=np.array(job_id),
        )


class _ShardEncoder:
    """A Ray Data actor: holds the model, encodes whole shards of the file list.

    Each call takes a batch of shard rows (``shard``, ``start``, ``stop`` int64 arrays) and
    returns ``shard`` and ``n_files`` of those it wrote.
    """

    def __init__(
        self,
        model: str,
        model_sha256: str,
        root: str,
        out: str,
        image_shape: tuple[int, ...] | None,
        batch_size: int,
        skip_unreadable: bool,
        job_id: str,
        use_gpu: bool,
        resize: bool | None = None,
        max_decode_bytes: int = MAX_DECODE_BYTES,
    ) -> None:
        # the model and the file list are read from the shared storage, not sent: small
        # constructor arguments let Ray restart a lost actor
        if hashlib.sha256(Path(model).read_bytes()).hexdigest() != model_sha256:
            raise InvalidInputError(f"the model file {model!r} changed while encoding")
        hasher = load_hasher(model)
        names = read_json_file(
            Path(out) / "files.json", max_bytes=MAX_FILE_LIST_BYTES, error=FileFormatError
        )
        net = getattr(hasher, "net_", None)
        if use_gpu and net is not None:  # deep hashers encode on their network's device
            net.to("cuda")
        self.encoder = ImageEncoder(hasher, image_shape, resize=resize)
        self.folder = Path(root)
        self.names = names
        self.out = Path(out)
        self.batch_size = batch_size
        self.skip_unreadable = skip_unreadable
        self.job_id = job_id
        self.max_decode_bytes = max_decode_bytes

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        done = []
        for shard, start, stop in zip(rows["shard"], rows["start"], rows["stop"]):
            files = [self.folder / name for name in self.names[int(start) : int(stop)]]
            part = encode_file_list(
                self.encoder,
                self.folder,
                files,
                batch_size=self.batch_size,
                skip_unreadable=self.skip_unreadable,
                max_decode_bytes=self.max_decode_bytes,
            )
            position = {name: i for i, name in enumerate(self.names[int(start) : int(stop)])}
            positions = np.array([int(start) + position[n] for n in part.kept], dtype=np.int64)
            _write_shard(_shard_path(self.out, int(shard)), part, positions, self.job_id)
            done.append((int(shard), int(stop - start)))
        return {
            "shard": np.array([s for s, _ in done], dtype=np.int64),
            "n_files": np.array([n for _, n in done], dtype=np.int64),
        }


def encode_files(
    model_path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    address: str | None = "local",
    image_shape: tuple[int, ...] | None = None,
    recursive: bool = True,
    batch_size: int = 256,
    shard_size: int = 1024,
    n_workers: int | None = None,
    use_gpu: bool | None = None,
    skip_unreadable: bool = False,
    resize: bool | None = None,
    verbose: bool = True,
    max_decode_bytes: int = MAX_DECODE_BYTES,
) -> DistributedCodes:
    """Encode every PNG and JPEG file under ``root`` on a Ray cluster, in resumable shards.

    The result equals that of :func:`~hashlearn.encoding.encode_image_files` with the same
    model, folder and ``batch_size`` (codes, ids and paths byte for byte), and is written to
    ``OUT/codes.npz`` in the same layout. Shards finished by an earlier run of the same job are
    kept (a job is the model file, the folder's files with their sizes and modification times,
    and the settings); shards of another job are removed.

    Parameters
    ----------
    model_path : path
        A saved model that takes images (see :func:`~hashlearn.encoding.encode_image_files`).
    root : path
        The images folder.
    out_dir : path
        The output folder (created); see the module's layout.
    address : str or None, default "local"
        The Ray cluster (see :func:`~hashlearn.distributed.connect`).
    image_shape : tuple, optional
        ``(h, w)`` or ``(h, w, c)`` of a model fitted on flattened pixels.
    recursive : bool, default True
        Include sub-folders.
    batch_size : int, default 256
        Images encoded at once by a worker.
    shard_size : int, default 1024
        Files per shard (a multiple of ``batch_size`` keeps every batch as in one process).
    n_workers : int, optional
        Actors holding the model; default: one per GPU of the cluster when it has GPUs, else
        one per CPU, at most one per shard to do.
    use_gpu : bool, optional
        One GPU per actor; default: when the cluster has GPUs.
    skip_unreadable : bool, default False
        List the files that do not read in ``result.skipped`` instead of stopping.
    resize : bool or None
        As :func:`~hashlearn.encoding.encode_image_files`.
    verbose : bool, default True
        Progress bar (files, as shards finish).
    max_decode_bytes : int, default 2 GiB
        Bytes each worker's decoding threads may hold at once (as
        :func:`~hashlearn.encoding.encode_image_files`).

    Raises
    ------
    InvalidInputError
        No image files, an unreadable file (unless ``skip_unreadable``), a model that does not
        take images, bad sizes, or a cluster that cannot be reached.
    HashlearnError
        Ray is not installed.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    shard_size = check_int(shard_size, "shard_size", minimum=1)
    max_decode_bytes = check_int(max_decode_bytes, "max_decode_bytes", minimum=1)
    model_file = Path(model_path)
    check_input_file(model_file)
    hasher = load_hasher(model_file)
    # checked before any worker starts
    encoder, folder, files = image_encoding_job(hasher, root, image_shape, recursive, resize)
    out = Path(out_dir)
    try:
        (out / "shards").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create {os.fspath(out)!r}: {exc}") from None
    settings = {
        "image_shape": image_shape and list(image_shape),
        "batch_size": batch_size,
        "shard_size": shard_size,
        "skip_unreadable": skip_unreadable,
        "resize": resize,
    }
    job = _job(model_file, folder, files, settings)
    job_id = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
    n_shards = -(-len(files) // shard_size)
    parts: list[EncodedFiles | None] = [
        _read_shard(_shard_path(out, shard), job_id) for shard in range(n_shards)
    ]
    for stale in (out / "shards").glob("part-*.npz"):  # another job's, or beyond this one's
        name = stale.stem.removeprefix("part-")
        if not name.isdigit() or int(name) >= n_shards or parts[int(name)] is None:
            stale.unlink(missing_ok=True)
    with atomic_write(out / "job.json") as handle:
        handle.write(json.dumps({**job, "job_id": job_id}, indent=1).encode())
    todo = [shard for shard, part in enumerate(parts) if part is None]
    reused = n_shards - len(todo)
    if todo:
        _run_shards(
            model_file.resolve(),
            job["model_sha256"],
            folder,
            files,
            out,
            todo,
            shard_size,
            address=address,
            image_shape=image_shape,
            batch_size=batch_size,
            n_workers=n_workers,
            use_gpu=use_gpu,
            skip_unreadable=skip_unreadable,
            resize=resize,
            max_decode_bytes=max_decode_bytes,
            job_id=job_id,
            done=len(files) - sum(min(shard_size, len(files) - s * shard_size) for s in todo),
            verbose=verbose,
        )
        for shard in todo:
            parts[shard] = _read_shard(_shard_path(out, shard), job_id)
            if parts[shard] is None:
                raise InvalidInputError(f"shard {shard} was not written to {os.fspath(out)!r}")
    result = assemble_image_codes(
        [part for part in parts if part is not None], folder, len(files), encoder.n_bits, root
    )
    codes_path = out / "codes.npz"
    write_image_codes(result, codes_path)
    return DistributedCodes(result, codes_path, n_shards, reused)


def _run_shards(
    model: Path,
    model_sha256: str,
    folder: Path,
    files: list[Path],
    out: Path,
    todo: list[int],
    shard_size: int,
    *,
    address: str | None,
    image_shape: tuple[int, ...] | None,
    batch_size: int,
    n_workers: int | None,
    use_gpu: bool | None,
    skip_unreadable: bool,
    resize: bool | None,
    max_decode_bytes: int,
    job_id: str,
    done: int,
    verbose: bool,
) -> None:
    """Encode the shards ``todo`` on an actor pool of Ray Data, showing files done."""
    ray = connect(address)
    resources = ray.cluster_resources()
    if use_gpu is None:
        use_gpu = resources.get("GPU", 0) > 0
    if n_workers is None:
        n_workers = int(resources.get("GPU", 0) if use_gpu else resources.get("CPU", 1))
    n_workers = max(1, min(check_int(n_workers, "n_workers", minimum=1), len(todo)))
    rows = [
        {"shard": s, "start": s * shard_size, "stop": min((s + 1) * shard_size, len(files))}
        for s in todo
    ]
    with atomic_write(out / "files.json") as handle:  # the workers' file list
        handle.write(json.dumps([f.relative_to(folder).as_posix() for f in files]).encode())
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _ShardEncoder,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_workers),
        num_cpus=1,
        num_gpus=1 if use_gpu else 0,
        fn_constructor_kwargs={
            "model": os.fspath(model),
            "model_sha256": model_sha256,
            "root": os.fspath(folder),
            "out": os.fspath(out.resolve()),
            "image_shape": image_shape,
            "batch_size": batch_size,
            "skip_unreadable": skip_unreadable,
            "job_id": job_id,
            "use_gpu": use_gpu,
            "resize": resize,
            "max_decode_bytes": max_decode_bytes,
        },
    )
    with progress(
        total=len(files), initial=done, desc="encode", unit="img", disable=not verbose
    ) as bar:
        try:
            for row in dataset.iter_rows():
                bar.update(int(row["n_files"]))
        except Exception as exc:  # a worker's error comes back wrapped by Ray
            cause = worker_error(exc)
            if cause is not None:
                raise cause from None
            raise
