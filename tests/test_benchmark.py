import csv
import json

import pytest

from hashlearn.benchmark import run_benchmark, summarize
from hashlearn.cli import main
from hashlearn.exceptions import UnknownNameError


def test_benchmark_rows_are_complete_and_reproducible():
    kwargs = dict(features="pixels", verbose=False)
    rows = run_benchmark("digits", ["lsh", "itq"], [8, 16], [0, 1], **kwargs)
    assert [(r.method, r.n_bits, r.seed) for r in rows] == [
        (m, b, s) for s in (0, 1) for m in ("lsh", "itq") for b in (8, 16)
    ]
    assert all(0 < r.mAP <= 1 and 0 <= r.P_at_10 <= 1 and r.fit_s >= 0 for r in rows)
    again = run_benchmark("digits", ["lsh", "itq"], [8, 16], [0, 1], **kwargs)
    assert [(r.mAP, r.P_at_10) for r in rows] == [(r.mAP, r.P_at_10) for r in again]
    table = summarize(rows)
    assert "8 bits" in table and "16 bits" in table and "±" in table


def test_unknown_method_fails_before_any_work():
    with pytest.raises(UnknownNameError, match="unknown hasher 'itk'"):
        run_benchmark("digits", ["lsh", "itk"], [8], [0], verbose=False)


def test_benchmark_command_writes_csv_and_json(tmp_path, capsys):
    assert (
        main(
            [
                "benchmark",
                "--dataset",
                "digits",
                "--features",
                "hog",
                "--methods",
                "lsh,pcah",
                "--bits",
                "8,12",
                "--seeds",
                "2",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lsh" in out and "pcah" in out and "12 bits" in out
    with open(tmp_path / "benchmark-digits-hog.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2 and {r["features"] for r in rows} == {"hog"}
    document = json.loads((tmp_path / "benchmark-digits-hog.json").read_text())
    assert document["config"]["bits"] == [8, 12] and "mAP" in document["metrics"]
    assert len(document["results"]) == 8


def test_benchmark_name_sets_the_file_names(tmp_path, capsys):
    assert (
        main(
            [
                "benchmark",
                "--dataset",
                "digits",
                "--methods",
                "lsh",
                "--bits",
                "8",
                "--seeds",
                "1",
                "--out",
                str(tmp_path),
                "--name",
                "lsh-only",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lsh-only.csv", "lsh-only.json"]
