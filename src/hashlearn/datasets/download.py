"""Fetching published dataset files: resumable downloads checked against a known size and SHA-256.

A download goes to ``<file>.part`` next to its final place. A cut connection leaves the ``.part``
behind and the next attempt asks the server for the rest (``Range: bytes=N-``); a server that
answers ``206 Partial Content`` gets its bytes appended, one that answers ``200`` sends the whole
file again. Once the ``.part`` has the expected size and SHA-256 it is renamed over the final name
(an atomic rename), so a file under its final name is always complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hashlearn._progress import progress
from hashlearn.exceptions import DownloadError, FileFormatError, InvalidInputError

CHUNK_BYTES = 1 << 16
RETRY_DELAY_S = 1.0
"""Seconds to wait before the first retry of a failed transfer; doubled at each further retry."""
USER_AGENT = "hashlearn-datasets (Python urllib)"
_TRANSIENT_HTTP = (408, 425, 429)  # worth retrying, like every 5xx
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name on disk, exact size, SHA-256 and the URLs to fetch it from.

    Attributes
    ----------
    name : file name, also its name in the local data folder.
    size : size in bytes.
    sha256 : lower-case hex SHA-256 of the whole file.
    urls : where to download it from, tried in order (mirrors first when the original is flaky).
    """

    name: str
    size: int
    sha256: str
    urls: tuple[str, ...]


def data_home(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds (or will hold) a dataset's files.

    Parameters
    ----------
    dataset : registry name of the dataset, e.g. ``"mnist"``.
    data_dir : an explicit folder; used as it is when given.

    Returns
    -------
    Path
        ``data_dir`` if given; else ``$HASHLEARN_DATA/<dataset>`` when the environment variable
        ``HASHLEARN_DATA`` is set; else ``~/.cache/hashlearn/<dataset>``.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = os.environ.get("HASHLEARN_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "hashlearn"
    return base / dataset


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike[str], remote: RemoteFile) -> None:
    """Check that ``path`` is exactly the published ``remote`` file.

    Raises
    ------
    FileFormatError
        When the size or the SHA-256 differs; the message gives both values and says to delete
        the file so that it is fetched again.
    """
    size = os.path.getsize(path)
    if size != remote.size:
        raise FileFormatError(
            f"{str(path)!r} has {size} bytes but the official {remote.name} has {remote.size}; "
            "it is incomplete or a different file: delete it so that it is downloaded again"
        )
    got = sha256_of(path)
    if got != remote.sha256:
        raise FileFormatError(
            f"{str(path)!r} has SHA-256 {got} but the official {remote.name} has "
            f"{remote.sha256}; the file is corrupted or a different version: delete it so that "
            "it is downloaded again"
        )


def _resume_offset(part: Path, size: int) -> int:
    """Bytes already in ``part``; a ``.part`` longer than the file cannot be right and is removed."""
    if not part.exists():
        return 0
    offset = part.stat().st_size
    if offset > size:
        part.unlink()
        return 0
    return offset


def _content_range_start(value: str | None) -> int | None:
    match = _CONTENT_RANGE.match(value or "")
    return int(match.group(1)) if match else None


def _transfer(url: str, part: Path, size: int, *, timeout: float, verbose: bool) -> None:
    """Bring ``part`` up to ``size`` bytes from ``url``, resuming what it already holds.

    Raises ``OSError`` / ``http.client.HTTPException`` for network failures and a connection that
    ends early, so that the caller can retry (and resume).
    """
    offset = _resume_offset(part, size)
    if offset == size:
        return
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise ConnectionError(
                    f"asked to resume at byte {offset} but the server sent "
                    f"Content-Range {response.headers.get('Content-Range')!r}; starting over"
                )
        elif response.status == 200:
            offset = 0  # the server ignored the Range header: it sends the whole file
        else:
            raise ConnectionError(f"unexpected HTTP status {response.status}")
        with (
            open(part, "ab" if offset else "wb") as out,
            progress(
                total=size,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name[: -len(".part")],
                disable=not verbose,
            ) as bar,
        ):
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                bar.update(len(chunk))
    received = part.stat().st_size
    if received < size:
        raise ConnectionError(f"the connection closed after {received} of {size} bytes")


def download_file(
    remote: RemoteFile,
    directory: str | os.PathLike[str],
    *,
    timeout: float = 60.0,
    retries: int = 2,
    verbose: bool = True,
) -> Path:
    """Download ``remote`` into ``directory``, resuming a previous partial download.

    Parameters
    ----------
    remote : the file, its size, SHA-256 and URLs (tried in order).
    directory : destination folder, created when missing.
    timeout : seconds without data before a connection is given up.
    retries : further attempts per URL after a transfer that failed without adding any bytes;
        a transfer cut after some progress is always resumed (with exponential back-off
        between attempts that make no progress).
    verbose : show a progress bar.

    Returns
    -------
    Path
        ``directory / remote.name``, complete and verified.

    Raises
    ------
    DownloadError
        When no URL delivers the file; names the URLs and the folder to place the file in by hand.
        The ``.part`` file stays, so the next call resumes.
    FileFormatError
        When a URL delivers a complete file whose SHA-256 is not the published one.
    """
    for url in remote.urls:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"only http(s) downloads are supported, got {url!r}")
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data folder {str(directory)!r}: {exc}") from None
    target = directory / remote.name
    part = directory / f"{remote.name}.part"
    failures: list[str] = []
    mismatch = ""
    for url in remote.urls:
        stalled = 0  # consecutive attempts that added no bytes
        while stalled <= retries:
            if stalled:
                time.sleep(RETRY_DELAY_S * 2 ** (stalled - 1))
            before = _resume_offset(part, remote.size)
            try:
                _transfer(url, part, remote.size, timeout=timeout, verbose=verbose)
            except urllib.error.HTTPError as exc:
                failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
                if exc.code == 416:  # range not satisfiable: the .part is not a prefix
                    part.unlink(missing_ok=True)
                elif exc.code < 500 and exc.code not in _TRANSIENT_HTTP:
                    break  # 403, 404...: this URL does not serve the file
                stalled += 1
                continue
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                after = part.stat().st_size if part.exists() else 0
                stalled = 0 if after > before else stalled + 1
                continue
            got = sha256_of(part)
            if got == remote.sha256:
                os.replace(part, target)
                return target
            part.unlink()
            mismatch = (
                f"{url} sent a file whose SHA-256 is {got}, expected {remote.sha256} "
                f"for {remote.name}"
            )
            failures.append(mismatch)
            break
    if mismatch and len(remote.urls) == 1:
        raise FileFormatError(f"{mismatch}; nothing was kept")
    raise DownloadError(
        f"could not download {remote.name} ({'; '.join(failures[-4:])}). Download it by hand from "
        f"{' or '.join(remote.urls)} and place it in {str(directory)!r}"
    )


def fetch_files(
    files: Sequence[RemoteFile],
    directory: str | os.PathLike[str],
    *,
    dataset: str,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> list[Path]:
    """Make sure every file of a dataset is in ``directory``, downloading the missing ones.

    Parameters
    ----------
    files : the dataset's published files.
    directory : the local data folder (see :func:`data_home`).
    dataset : dataset name, for messages.
    download : fetch missing files; when False a missing file is an error.
    verify : check the size and SHA-256 of files that were already there (downloaded files are
        always checked).
    verbose : progress bars.

    Returns
    -------
    list of Path
        The local paths, in the order of ``files``.

    Raises
    ------
    DownloadError
        For a missing file when ``download`` is False (listing every expected file and the
        folder), or a failed download.
    FileFormatError
        For a file whose size or SHA-256 is wrong.
    """
    directory = Path(directory)
    paths = [directory / remote.name for remote in files]
    missing = [remote for remote, path in zip(files, paths) if not path.is_file()]
    if missing and not download:
        listing = ", ".join(f"{remote.name} ({remote.urls[0]})" for remote in missing)
        raise DownloadError(
            f"dataset {dataset!r}: {len(missing)} of its {len(files)} files are not in "
            f"{str(directory)!r}: {listing}. Place them there, or allow downloading "
            "(download=True)"
        )
    for remote, path in zip(files, paths):
        if remote in missing:
            download_file(remote, directory, verbose=verbose)
        elif verify:
            verify_file(path, remote)
    return paths
