"""Shard files and their manifest (no Ray needed), and the message when Ray is missing."""

import json
import sys

import numpy as np
import pytest

from hashlearn.cli import main
from hashlearn.distributed import read_manifest, write_sharded_index
from hashlearn.distributed._ray import import_ray
from hashlearn.exceptions import FileFormatError, HashlearnError, InvalidInputError
from hashlearn.index import load_index


def test_items_go_to_the_shard_of_their_id(tmp_path):
    codes = np.arange(20, dtype=np.uint8).reshape(10, 2)
    ids = np.array([0, 1, 2, 3, 4, 10, 11, 12, 13, 14])
    manifest = write_sharded_index(tmp_path / "m.json", codes, ids, 16, 3, "mih")
    assert (manifest.index_type, manifest.n_bits, manifest.n_shards, manifest.ntotal) == (
        "mih", 16, 3, 10,
    )  # fmt: skip
    for shard, path in enumerate(manifest.shards):
        index = load_index(path)
        assert type(index).__name__ == "MIHIndex" or index.type_name == "mih"
        assert sorted(index.ids.tolist()) == [i for i in ids.tolist() if i % 3 == shard]
        np.testing.assert_array_equal(index.get_codes(index.ids), codes[np.isin(ids, index.ids)])
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["routing"] == "id % n_shards" and len(document["sha256"]) == 64


def test_bad_input_is_refused(tmp_path):
    codes = np.zeros((3, 2), np.uint8)
    with pytest.raises(InvalidInputError, match="json"):
        write_sharded_index(tmp_path / "m.hlindex", codes, np.arange(3), 16, 2)
    with pytest.raises(InvalidInputError, match="n_shards"):
        write_sharded_index(tmp_path / "m.json", codes, np.arange(3), 16, 0)
    with pytest.raises(InvalidInputError, match="non-negative"):
        write_sharded_index(tmp_path / "m.json", codes, np.array([0, -1, 2]), 16, 2)
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    with pytest.raises(FileFormatError, match="hashlearn-shards"):
        read_manifest(tmp_path / "x.json")
    with pytest.raises(InvalidInputError, match="not found"):
        read_manifest(tmp_path / "absent.json")


def test_without_ray_the_message_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(HashlearnError, match=r"pip install 'hashlearn\[ray\]'"):
        import_ray()
    write_sharded_index(tmp_path / "m.json", np.zeros((3, 1), np.uint8), np.arange(3), 8, 2)
    np.save(tmp_path / "q.npy", np.zeros((1, 1), np.uint8))
    argv = ["search", "--index", str(tmp_path / "m.json"), "--queries", str(tmp_path / "q.npy")]
    assert main(argv) == 2
    assert "hashlearn[ray]" in capsys.readouterr().err
