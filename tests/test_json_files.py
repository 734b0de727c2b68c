"""Every JSON file hashlearn reads back goes through the bounded reader: a crafted file (nested
thousands deep, not UTF-8, a lone surrogate, NaN) is a FileFormatError naming the file, never a
RecursionError or a traceback from the json module; cache manifests that are not what hashlearn
wrote are not reused."""

from __future__ import annotations

import pytest

from hashlearn.distributed.manifest import read_manifest
from hashlearn.exceptions import FileFormatError
from hashlearn.report.document import load_results
from hashlearn.report.robustness_sections import load_robustness

CRAFTED = [
    (b"[" * 200_000 + b"]" * 200_000, "nested deeper than"),
    (b'{"kind": "\xff"}', "UTF-8"),
    (b'{"kind": "\\ud800"}', "surrogate"),
    (b'{"kind": NaN}', "NaN"),
    (b'{"kind": 1, "kind": 2}', "twice"),
]


@pytest.mark.parametrize(("data", "problem"), CRAFTED)
@pytest.mark.parametrize("reader", [load_results, load_robustness, read_manifest])
def test_crafted_json_files_are_a_clear_error(reader, data, problem, tmp_path):
    path = tmp_path / "crafted.json"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=problem) as caught:
        reader(path)
    assert "crafted.json" in str(caught.value)
