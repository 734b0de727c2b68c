"""An index split into 2 and 3 shards on a two-node Ray cluster answers exactly as one
LinearIndex over all codes (k-NN, range search), also after adds and removes."""

import json

import numpy as np
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed")

from _reference import assert_results_equal, knn
from hashlearn import create_hasher
from hashlearn.cli import main
from hashlearn.datasets import load_dataset
from hashlearn.distributed import ShardedIndex, read_manifest, write_sharded_index
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.index import LinearIndex

N_BITS = 16  # short codes: many ties, so the merge's tie-break by id is exercised


@pytest.fixture(scope="module")
def data():
    """Codes of the 1,797 digits (16-bit ITQ): 1,500 indexed with scattered ids, 200 to add,
    97 queries."""
    X = load_dataset("digits").X
    codes = create_hasher("itq", n_bits=N_BITS, random_state=0).fit(X).encode(X)
    ids = np.random.default_rng(0).permutation(10_000)[: len(codes)].astype(np.int64) * 7 + 3
    return codes[:1500], ids[:1500], codes[1500:1700], ids[1500:1700], codes[1700:]


def check_same(sharded, reference, queries):
    assert sharded.ntotal == reference.ntotal
    for k in (1, 10, 2000):  # 2000 > ntotal: padded rows
        assert_results_equal(sharded.search(queries, k), reference.search(queries, k))
    for radius in (0, 3, 6):
        assert_results_equal(
            sharded.range_search(queries, radius), reference.range_search(queries, radius)
        )


@pytest.mark.parametrize(("n_shards", "index_type"), [(2, "linear"), (3, "mih")])
def test_shards_answer_as_one_index(ray_cluster, data, tmp_path, n_shards, index_type):
    codes, ids, new_codes, new_ids, queries = data
    manifest = write_sharded_index(
        tmp_path / "digits.json", codes, ids, N_BITS, n_shards, index_type
    )
    assert [p.name for p in manifest.shards] == [
        f"digits.shard-{i}-of-{n_shards}.hlindex" for i in range(n_shards)
    ]
    reference = LinearIndex(N_BITS)
    reference.add_with_ids(codes, ids)
    D, I = reference.search(queries, 10)  # the reference itself against the brute force
    assert_results_equal((D, I), knn(codes, ids, queries, 10))
    # With a CPU reserved per shard, the 2 shards must sit on the 2 one-CPU nodes; 3 shards
    # reserve none (they would not fit) and Ray places them where it likes.
    cpus = 1.0 if n_shards == 2 else 0.0
    with ShardedIndex(
        tmp_path / "digits.json", address=ray_cluster, cpus_per_shard=cpus
    ) as sharded:
        assert sharded.n_shards == n_shards
        if n_shards == 2:
            assert len(set(sharded.nodes())) == 2  # one shard on each node
        check_same(sharded, reference, queries)
        sharded.add_with_ids(new_codes, new_ids)
        reference.add_with_ids(new_codes, new_ids)
        gone = np.concatenate([ids[::7], new_ids[::5], [1]])  # 1 is no id: ignored
        assert sharded.remove_ids(gone) == reference.remove_ids(gone) == len(gone) - 1
        check_same(sharded, reference, queries)
        # a refused add adds nothing, on any shard
        with pytest.raises(InvalidInputError, match="already in the index"):
            sharded.add_with_ids(new_codes[:3], np.array([10**9, 10**9 + 1, new_ids[1]]))
        assert sharded.ntotal == reference.ntotal


def test_a_changed_manifest_or_shard_is_refused(data, tmp_path, ray_cluster):
    codes, ids, *_ = data
    write_sharded_index(tmp_path / "a.json", codes, ids, N_BITS, 2)
    document = json.loads((tmp_path / "a.json").read_text())
    document["ntotal"] += 1
    (tmp_path / "b.json").write_text(json.dumps(document))
    with pytest.raises(FileFormatError, match="checksum"):
        read_manifest(tmp_path / "b.json")
    write_sharded_index(tmp_path / "c.json", codes[:10], ids[:10], N_BITS, 2)
    (tmp_path / "c.shard-1-of-2.hlindex").replace(tmp_path / "a.shard-1-of-2.hlindex")
    with pytest.raises(FileFormatError, match=r"a\.shard-1-of-2"):
        ShardedIndex(tmp_path / "a.json", address=ray_cluster)


def test_cli_index_shards_and_search(ray_cluster, data, tmp_path, capsys):
    codes, ids, _, _, queries = data
    np.save(tmp_path / "codes.npy", codes)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "queries.npy", queries)
    build = ["index", "--codes", str(tmp_path / "codes.npy"), "--ids", str(tmp_path / "ids.npy")]
    build += ["--bits", str(N_BITS), "--index-type", "mih"]
    assert main([*build, "--shards", "3", "--out", str(tmp_path / "s.json")]) == 0
    assert main([*build, "--out", str(tmp_path / "one.hlindex")]) == 0
    assert main([*build, "--shards", "3", "--out", str(tmp_path / "s.hlindex")]) == 2
    for extra in (["-k", "25"], ["--radius", "4"]):
        search = ["search", "--queries", str(tmp_path / "queries.npy"), *extra]
        assert (
            main(
                [
                    *search,
                    "--index",
                    str(tmp_path / "one.hlindex"),
                    "--out",
                    str(tmp_path / "1.npz"),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    *search,
                    "--index",
                    str(tmp_path / "s.json"),
                    "--ray",
                    ray_cluster,
                    "--out",
                    str(tmp_path / "3.npz"),
                ]
            )
            == 0
        )
        one, three = np.load(tmp_path / "1.npz"), np.load(tmp_path / "3.npz")
        assert sorted(one.files) == sorted(three.files)
        for name in one.files:
            np.testing.assert_array_equal(one[name], three[name])
    assert "ShardedIndex" in capsys.readouterr().out


def test_the_search_service_over_shards(ray_cluster, data, tmp_path):
    """The service over a 2-shard manifest answers, adds, deletes and looks items up as over
    one index file."""
    from hashlearn.serve import open_service
    from hashlearn.serve.writes import NewItem

    codes, ids, new_codes, _, queries = data
    model = tmp_path / "itq.safetensors"
    create_hasher("itq", n_bits=N_BITS, random_state=0).fit(load_dataset("digits").X).save(model)
    write_sharded_index(tmp_path / "s.json", codes, ids, N_BITS, 2, "mih")
    one = LinearIndex(N_BITS)
    one.add_with_ids(codes, ids)
    one.save(tmp_path / "one.hlindex")
    services = [
        open_service(model, tmp_path / "s.json", data_dir=tmp_path / "a", ray_address=ray_cluster),
        open_service(model, tmp_path / "one.hlindex", data_dir=tmp_path / "b"),
    ]
    try:
        sharded, single = services
        assert sharded.stats()["index_type"] == "ShardedIndex"
        for service in services:
            service.add([NewItem(code=new_codes[i : i + 1]) for i in range(5)])
            service.delete(int(ids[0]))
        assert sharded.stats()["items"] == single.stats()["items"] == len(ids) + 4
        for q in range(0, len(queries), 10):
            for ask in ({"k": 7}, {"radius": 3}):
                assert sharded.search(queries[q : q + 1], **ask) == single.search(
                    queries[q : q + 1], **ask
                )
        np.testing.assert_array_equal(sharded.code_of(int(ids[5])), codes[5:6])
        assert sharded.list_items(offset=0, limit=20) == single.list_items(offset=0, limit=20)
    finally:
        for service in services:
            service.close()
            if isinstance(service.index, ShardedIndex):
                service.index.close()
