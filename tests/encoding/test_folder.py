"""A folder of pictures made ready to serve, from Python: built once, reused while nothing changes,
the service's earlier writes kept aside when the index is rebuilt; and the files of codes."""

from pathlib import Path

import numpy as np
import pytest

from _serve_support import png_bytes
from hashlearn import create_hasher
from hashlearn._locking import STORE_LOCK_NAME, FolderInUseError, FolderLock
from hashlearn.encoding import default_work_dir, prepare_folder, read_codes, write_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.index import load_index


@pytest.fixture
def model_file(tmp_path, digits_small):
    X, _ = digits_small
    path = tmp_path / "lsh.safetensors"
    create_hasher("lsh", n_bits=16, random_state=0).fit(X).save(path)  # knows its 8x8x1 images
    return path


@pytest.fixture
def photos(tmp_path, digits_small):
    X, _ = digits_small
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(6):
        (root / f"digit-{i}.png").write_bytes(png_bytes(X[i]))
    return root


def test_a_folder_is_built_once_then_reused(model_file, photos, tmp_path):
    work = tmp_path / "work"
    first = prepare_folder(model_file, photos, work, verbose=False)
    assert not first.reused and first.skipped == [] and first.work_dir == work
    assert (first.index, first.codes) == (work / "index.hlindex", work / "codes.npz")
    assert first.data_dir == work / "writes" and first.kept_writes is None
    index = load_index(first.index)
    assert index.ntotal == 6 and type(index).__name__ == "MultiIndexHashingIndex"
    assert read_codes(first.codes).paths.tolist() == [f"digit-{i}.png" for i in range(6)]
    again = prepare_folder(model_file, photos, work, verbose=False)
    assert again.reused and again.index == first.index and again.kept_writes is None


def test_writes_a_service_still_uses_are_not_moved_and_one_process_prepares(
    model_file, photos, tmp_path
):
    work = tmp_path / "work"
    first = prepare_folder(model_file, photos, work, verbose=False)
    first.data_dir.mkdir()
    service = FolderLock(first.data_dir / STORE_LOCK_NAME, "a hashlearn service")  # as a store
    (photos / "digit-0.png").rename(photos / "moved.png")  # a rebuild would move the writes
    with pytest.raises(FolderInUseError, match=r"writes: in use by a hashlearn service \(pid"):
        prepare_folder(model_file, photos, work, verbose=False)
    assert first.data_dir.is_dir() and not list(work.glob("writes-before-*"))
    service.release()
    preparing = FolderLock(work / "prepare.lock", "a test")
    with pytest.raises(FolderInUseError, match="in use by another process preparing this folder"):
        prepare_folder(model_file, photos, work, verbose=False)
    preparing.release()
    rebuilt = prepare_folder(model_file, photos, work, verbose=False)
    assert rebuilt.kept_writes is not None and rebuilt.kept_writes.is_dir()


@pytest.mark.parametrize("crafted", [b"[" * 100_000, b"\xff\xfe", b'{"n": NaN}'])
def test_a_crafted_manifest_is_built_afresh_not_reused(model_file, photos, tmp_path, crafted):
    work = tmp_path / "work"
    prepare_folder(model_file, photos, work, verbose=False)
    (work / "manifest.json").write_bytes(crafted)
    again = prepare_folder(model_file, photos, work, verbose=False)
    assert not again.reused and load_index(again.index).ntotal == 6
    assert prepare_folder(model_file, photos, work, verbose=False).reused


def test_a_rebuild_keeps_the_earlier_writes_aside(model_file, photos, tmp_path):
    work = tmp_path / "work"
    first = prepare_folder(model_file, photos, work, verbose=False)
    first.data_dir.mkdir()
    (first.data_dir / "items.sqlite3").write_bytes(b"writes over the first index")
    reused = prepare_folder(model_file, photos, work, verbose=False)
    assert reused.reused and reused.kept_writes is None and reused.data_dir.is_dir()
    (photos / "digit-0.png").rename(photos / "moved.png")  # the folder changed: built again
    rebuilt = prepare_folder(model_file, photos, work, verbose=False)
    assert not rebuilt.reused and rebuilt.data_dir == work / "writes"
    assert not rebuilt.data_dir.exists()
    kept = rebuilt.kept_writes
    assert kept is not None and kept.parent == work and kept.name.startswith("writes-before-")
    assert (kept / "items.sqlite3").read_bytes() == b"writes over the first index"


def test_a_given_data_folder_is_used_as_it_is(model_file, photos, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    result = prepare_folder(model_file, photos, tmp_path / "work", data_dir=mine, verbose=False)
    assert result.data_dir == mine and result.kept_writes is None
    (photos / "digit-1.png").unlink()
    result = prepare_folder(model_file, photos, tmp_path / "work", data_dir=mine, verbose=False)
    assert not result.reused and result.kept_writes is None
    assert (mine / "keep.txt").read_text() == "mine"


def test_the_work_folder_sits_next_to_the_pictures_by_default(model_file, photos, tmp_path):
    assert default_work_dir("albums/2024/") == Path("albums/2024.hashlearn")
    result = prepare_folder(model_file, f"{photos}/", verbose=False)
    assert result.work_dir == tmp_path / "photos.hashlearn"
    assert result.index.is_file() and result.data_dir == tmp_path / "photos.hashlearn" / "writes"


def test_unreadable_pictures_are_skipped_and_named(model_file, photos, tmp_path):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = prepare_folder(model_file, photos, tmp_path / "work", verbose=False)
    assert [name for name, _ in result.skipped] == ["broken.png"]
    assert load_index(result.index).ntotal == 6
    with pytest.raises(InvalidInputError, match=r"none\.safetensors: no such file"):
        prepare_folder(tmp_path / "none.safetensors", photos, tmp_path / "work", verbose=False)


def test_files_of_codes_keep_their_code_length(tmp_path):
    codes = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    write_codes(tmp_path / "c.npz", codes, 12)
    write_codes(tmp_path / "c.npy", codes, 12)
    with_length = read_codes(tmp_path / "c.npz")
    np.testing.assert_array_equal(with_length.codes, codes)
    assert (with_length.n_bits, with_length.code_length, with_length.ids) == (12, 12, None)
    bare = read_codes(tmp_path / "c.npy")
    assert (bare.n_bits, bare.code_length) == (None, 16)  # 8 bits per byte when not stored
    np.savez(tmp_path / "other.npz", X=codes)
    with pytest.raises(InvalidInputError, match="has no array 'codes'"):
        read_codes(tmp_path / "other.npz")
