"""hashlearn.report: results validation, tables, figures, model views, and the page in Chromium."""

import base64
import copy
import importlib.util
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser

import numpy as np
import pytest

import _serve_support as serve_support
from hashlearn.cli import main
from hashlearn.codes import pack_bits
from hashlearn.datasets.split import Subset
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.report import build_report, load_results
from hashlearn.report.figures import select_radius_groups
from hashlearn.report.model import (
    EncodedSplit,
    class_distances,
    distinct_codes,
    retrievals,
    tsne_embedding,
    umap_embedding,
)
from hashlearn.report.results import group_rows, mean_curve, metric_names, metric_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAVE_UMAP = importlib.util.find_spec("umap") is not None
UMAP_NOTE = "UMAP map skipped: it needs the optional package umap-learn"


# -- a small hand-written results document ------------------------------------------------------


def _row(method, n_bits, seed, mAP, P10, fit_s, curves=True):
    row = {
        "dataset": "toy",
        "protocol": "default",
        "manifest": f"hash{seed}",
        "features": "pixels",
        "method": method,
        "n_bits": n_bits,
        "seed": seed,
        "metrics": {"mAP": mAP, "P@10": P10},
        "fit_s": fit_s,
        "encode_ms": 0.01,
        "query_ms": 0.5,
    }
    if curves:
        radius = list(range(n_bits + 1))
        row["curves"] = {
            "pr": {
                "radius": radius,
                "precision": [0.9 - 0.8 * r / n_bits for r in radius],
                "recall": [r / n_bits for r in radius],
            },
            "radius": {
                "radius": [0, 1, 2],
                "P@10": [0.5 + seed * 0.1, 0.6, 0.7],
                "query_ms": [0.1, 0.2, 0.4],
                "candidates": [1.0, 5.0, 20.0],
            },
        }
    return row


def small_document():
    """lsh and itq at 8 and 16 bits, two seeds each; itq at 16 bits has no curves."""
    rows = [
        _row("lsh", 8, 0, 0.20, 0.40, 0.01),
        _row("lsh", 8, 1, 0.30, 0.50, 0.03),
        _row("lsh", 16, 0, 0.25, 0.45, 0.02),
        _row("lsh", 16, 1, 0.35, 0.55, 0.02),
        _row("itq", 8, 0, 0.40, 0.30, 0.50),
        _row("itq", 8, 1, 0.50, 0.30, 0.70),
        _row("itq", 16, 0, 0.30, 0.60, 0.40, curves=False),
        _row("itq", 16, 1, 0.30, 0.60, 0.60, curves=False),
    ]
    return {
        "schema": 2,
        "config": {"bits": [8, 16]},
        "protocol": {
            "name": "default",
            "dataset": "toy",
            "manifest": {"0": "hash0", "1": "hash1"},
            "sizes": {"query": 10, "database": 90, "train": 60, "validation": 10},
        },
        "metrics": {"mAP": "mean average precision", "P@10": "precision of the top 10"},
        "versions": {"hashlearn": "0.0"},
        "timings": {"total_s": 1.5},
        "results": rows,
    }


# -- validation ---------------------------------------------------------------------------------


def _drop(key):
    return lambda d: d.pop(key)


def _set(path, value):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop("schema"), "has no 'schema' key"),
        (_set(["schema"], 1), "has schema 1; this version reads schema 2"),
        (_drop("results"), "lacks the required key 'results'"),
        (_set(["protocol"], "default"), "'protocol' must be a JSON object, got str"),
        (_set(["results"], []), "'results' is empty"),
        (lambda d: d["results"][1].pop("n_bits"), r"results\[1\] lacks the required key 'n_bits'"),
        (_set(["results", 2, "n_bits"], "16"), r"results\[2\]: 'n_bits' must be an integer >= 1"),
        (_set(["results", 0, "seed"], -1), r"results\[0\]: 'seed' must be an integer >= 0"),
        (
            _set(["results", 3, "metrics", "mAP"], "high"),
            r"results\[3\]: metrics\['mAP'\] must be a number or null, got 'high'",
        ),
        (_set(["results", 0, "fit_s"], True), r"results\[0\]: 'fit_s' must be a number"),
        (
            _set(["results", 0, "curves", "pr", "recall"], [0.0, 1.0]),
            r"curves\['pr'\]\['recall'\] has 2 values but 'radius' has 9",
        ),
        (
            lambda d: d["results"][0]["curves"]["pr"].pop("precision"),
            r"curves\['pr'\] lacks the series 'precision'",
        ),
        (
            _set(["results", 0, "curves", "radius", "radius"], [0, 1, 9]),
            r"curves\['radius'\]\['radius'\] must hold integer radii from 0 to n_bits=8",
        ),
    ],
)
def test_invalid_documents_name_the_problem(change, message):
    document = small_document()
    change(document)
    with pytest.raises(FileFormatError, match=message):
        load_results(document)


def test_results_argument_and_file_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="path to a JSON file or a dict, got int"):
        load_results(42)
    with pytest.raises(InvalidInputError, match="results file not found"):
        load_results(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": 2,')
    with pytest.raises(FileFormatError, match="is not valid JSON"):
        load_results(broken)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(small_document()))
    assert load_results(good) == small_document()


# -- tables -------------------------------------------------------------------------------------


def test_metric_table_means_std_and_best():
    groups = group_rows(small_document())
    assert [(g.label, g.n_bits, g.seeds) for g in groups] == [
        ("lsh", 8, [0, 1]),
        ("lsh", 16, [0, 1]),
        ("itq", 8, [0, 1]),
        ("itq", 16, [0, 1]),
    ]
    assert metric_names(small_document()) == ["mAP", "P@10", "fit_s", "encode_ms", "query_ms"]
    table = metric_table(groups, "mAP")
    assert table.methods == ["lsh", "itq"] and table.bits == [8, 16]
    lsh8 = table.cells[("lsh", 8)]
    assert lsh8.mean == pytest.approx(0.25)
    assert lsh8.std == pytest.approx(np.sqrt(0.005))  # sample std of 0.2, 0.3 (ddof=1)
    assert lsh8.n == 2 and not lsh8.best
    assert table.cells[("itq", 8)].best and table.cells[("itq", 8)].mean == pytest.approx(0.45)
    # 16 bits: lsh 0.30 and itq 0.30 tie -> both best
    assert table.cells[("lsh", 16)].best and table.cells[("itq", 16)].best
    assert table.cells[("itq", 16)].std == pytest.approx(0.0)
    # timings: lower is better
    fit = metric_table(groups, "fit_s")
    assert not fit.higher_is_better
    assert fit.cells[("lsh", 8)].best and not fit.cells[("itq", 8)].best


def test_single_seed_cells_have_no_std():
    document = small_document()
    document["results"] = [r for r in document["results"] if r["seed"] == 0]
    table = metric_table(group_rows(document), "P@10")
    cell = table.cells[("itq", 16)]
    assert cell.std is None and cell.text() == "0.6000" and cell.best


def test_labels_name_features_when_a_method_has_several():
    document = small_document()
    document["results"][0]["features"] = "hog"
    labels = {g.label for g in group_rows(document)}
    assert labels == {"lsh (hog)", "lsh (pixels)", "itq"}


def test_mean_curve_averages_seeds_on_common_radii():
    document = small_document()
    document["results"][1]["curves"]["radius"] = {
        "radius": [0, 1],
        "P@10": [0.7, 0.8],
        "query_ms": [0.3, None],
    }
    curve = mean_curve(group_rows(document)[0], "radius")
    assert curve["radius"].tolist() == [0.0, 1.0]
    assert curve["P@10"] == pytest.approx([0.6, 0.7])
    assert curve["query_ms"] == pytest.approx([0.2, 0.2])  # None is skipped, not zero
    assert "candidates" not in curve  # the second seed lacks it
    assert mean_curve(group_rows(document)[3], "pr") is None


def test_radius_lines_limited_to_one_code_length():
    document = small_document()
    groups = group_rows(document)
    assert len(select_radius_groups(groups)) == 3  # itq 16 has no curve
    chosen = select_radius_groups(groups, max_lines=2)
    assert [(g.label, g.n_bits) for g in chosen] == [("lsh", 8), ("itq", 8)]


# -- the page, results only ---------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects the title, the <img> sources, bold table cells and the image-check attributes."""

    def __init__(self):
        super().__init__()
        self.title = ""
        self.images = []
        self.check = {}
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif attrs.get("id") == "image-check":
            self.check = attrs

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def parse_page(text):
    page = _Page()
    page.feed(text)
    return page


def png_of(uri):
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    png = base64.b64decode(uri[len(prefix) :], validate=True)
    assert png[:8] == PNG_SIGNATURE and len(png) > 1000
    return png


def metric_rows(text, metric):
    """{method: [cell html]} of the table of ``metric``."""
    table = re.search(rf'<table class="metric" data-metric="{re.escape(metric)}".*?</table>', text)
    body = table.group(0).split("<tbody>")[1]
    rows = re.findall(r"<tr><th>([^<]*)</th>(.*?)</tr>", body)
    return {name: re.findall(r"<td>(.*?)</td>", cells) for name, cells in rows}


def test_results_report_tables_figures_and_notes(tmp_path):
    out = build_report(small_document(), tmp_path / "sub" / "report.html", verbose=False)
    assert out == tmp_path / "sub" / "report.html"
    text = out.read_text()
    page = parse_page(text)
    assert page.title == "hashlearn report: toy, protocol default"
    assert metric_rows(text, "mAP") == {
        "lsh": ["0.2500 ± 0.0707", "<strong>0.3000 ± 0.0707</strong>"],
        "itq": ["<strong>0.4500 ± 0.0707</strong>", "<strong>0.3000 ± 0.0000</strong>"],
    }
    assert metric_rows(text, "fit_s")["lsh"][0] == "<strong>0.02 ± 0.01414</strong>"
    assert "seed 0: hash0; seed 1: hash1" in text and "mean average precision" in text
    assert "No precision-recall curve for: itq 16 bits." in text
    assert "No radius curve for: itq 16 bits." in text
    files = sorted(p.name for p in (tmp_path / "sub" / "report_files").iterdir())
    assert files == ["pr_curves.png", "radius_curves.png"]
    assert len(page.images) == 2 and page.check["data-total"] == "2"
    for uri, name in zip(page.images, files):
        assert png_of(uri) == (tmp_path / "sub" / "report_files" / name).read_bytes()
    assert "http://" not in text and "https://" not in text  # nothing loaded from elsewhere


def test_results_without_curves_skip_figures_and_stale_files_go(tmp_path):
    out = tmp_path / "report.html"
    build_report(small_document(), out, verbose=False)
    document = small_document()
    for row in document["results"]:
        row.pop("curves", None)
    build_report(document, out, verbose=False, title="No <curves>")
    text = out.read_text()
    page = parse_page(text)
    assert page.title == "No <curves>" and "<h1>No &lt;curves&gt;</h1>" in text
    assert page.images == [] and page.check["data-total"] == "0"
    assert "No row holds curves.pr: figure skipped." in text
    assert "No row holds curves.radius: figure skipped." in text
    assert list((tmp_path / "report_files").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report_files"]


def test_build_report_argument_errors(tmp_path):
    with pytest.raises(InvalidInputError, match=r"must name an \.html file"):
        build_report(small_document(), tmp_path / "report.pdf", verbose=False)
    with pytest.raises(InvalidInputError, match="model file not found"):
        build_report(small_document(), tmp_path / "r.html", model=tmp_path / "m.st", verbose=False)
    with pytest.raises(InvalidInputError, match="model must be a fitted Hasher"):
        build_report(small_document(), tmp_path / "r.html", model=3, verbose=False)
    not_a_model = tmp_path / "m.safetensors"
    not_a_model.write_bytes(b"nonsense")
    with pytest.raises(FileFormatError):
        build_report(small_document(), tmp_path / "r.html", model=not_a_model, verbose=False)
    assert not (tmp_path / "r.html").exists()


# -- model views on hand-made codes -------------------------------------------------------------


def _encoded(query_bits, query_y, db_bits, db_y):
    def subset(bits, y):
        y = np.asarray(y)
        return Subset(np.zeros((len(y), 2, 2), np.float32), y, np.arange(len(y)))

    return EncodedSplit(
        "lsh",
        4,
        "toy",
        0,
        {0: "zero", 1: "one"},
        subset(query_bits, query_y),
        subset(db_bits, db_y),
        pack_bits(np.array(query_bits)),
        pack_bits(np.array(db_bits)),
    )


def test_retrievals_rank_by_distance_then_position():
    db = [[1, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    encoded = _encoded([[0, 0, 0, 0]], [0], db, [1, 0, 0, 1, 1])
    found = retrievals(encoded, n_queries=8, k=3, random_state=0)
    assert found.queries.tolist() == [0]  # only one query to choose from
    assert found.indices.tolist() == [[2, 4, 1]]  # distances 0, 0, 1; ties by position
    assert found.distances.tolist() == [[0, 0, 1]]
    assert found.matches.tolist() == [[True, False, True]]
    # distances to the database: 4, 1, 0, 1, 0; the cut at distance 1 falls inside a tie
    assert found.closer.tolist() == [2] and found.tied.tolist() == [2]
    assert found.shown_at_cut().tolist() == [1]
    assert encoded.label_name(1) == "one" and encoded.label_name(7) == "7"


def test_retrieval_section_explains_identical_rows(tmp_path):
    """Queries 1 and 2 share a code; query 4 has another code yet the same 10 results, because
    the cut falls inside a tie broken by database position."""
    from hashlearn.report.model_sections import _retrieval_section
    from hashlearn.report.writer import FigureWriter

    db = [[0, 0, 0, 0]] * 6 + [[1, 0, 0, 0]] * 6
    queries = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 1, 0]]
    encoded = _encoded(queries, [0, 0, 1, 0], db, [0] * 6 + [1] * 6)
    found = retrievals(encoded, n_queries=8, k=10, random_state=0)
    assert found.indices[0].tolist() == list(range(10)) == found.indices[3].tolist()
    assert found.closer.tolist() == [6, 6, 6, 6] and found.tied.tolist() == [6, 6, 6, 6]
    html = _retrieval_section(encoded, 0, FigureWriter(tmp_path))
    cells = re.sub(r"(<[^>]+>)+", "|", html)  # table cells between bars; empty cells vanish
    assert "|1|zero|00|0–1|4 of 6 at distance 1 shown|2 (same code), 4 (other code)|" in cells
    assert "|3|one|0f|3–4|4 of 6 at distance 4 shown|4|zero|04|" in cells  # no twin
    assert "|04|1–2|4 of 6 at distance 2 shown|1 (other code), 2 (other code)|" in cells
    assert "At 4 bits this happens for 4 of the 4 queries (1, 2, 3 and 4)." in html
    assert (
        "Queries 1, 2 and 4 show the same results with codes 00, 00 and 04: the same items "
        "come first for each" in html
    )
    assert (tmp_path / "retrieval.png").read_bytes()[:8] == PNG_SIGNATURE


def test_distinct_codes_count_and_take_the_majority_class():
    bits = [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    found = distinct_codes(pack_bits(np.array(bits)), np.array([2, 5, 2, 5, 3, 1]), 4)
    assert found.n_sampled == 6
    # np.unique orders the packed bytes: 0x03 (1100), 0x08 (0001), 0x0f (1111)
    assert found.codes.ravel().tolist() == [0x03, 0x08, 0x0F]
    assert found.counts.tolist() == [2, 3, 1]
    assert found.labels.tolist() == [3, 2, 1]  # 1100: classes 5 and 3 tie -> the smaller
    assert found.n_mixed == 2
    sample = distinct_codes(
        pack_bits(np.array(bits * 10)), np.arange(60) % 3, 4, max_points=7, random_state=1
    )
    assert sample.n_sampled == 7 == sample.counts.sum()
    with pytest.raises(InvalidInputError, match="one label per code"):
        distinct_codes(pack_bits(np.array(bits)), np.zeros((6, 2)), 4)


def test_umap_without_umap_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    codes = pack_bits(np.eye(8, dtype=np.uint8))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'hashlearn\[umap\]'"):
        umap_embedding(codes, 8)


@pytest.mark.skipif(not HAVE_UMAP, reason="umap-learn is not installed (the umap extra)")
def test_umap_embedding_separates_far_codes_and_is_seeded():
    """Two groups of 16-bit codes: all-zeros and all-ones, each with every 1- and 2-bit flip.
    Within a group codes are 1-4 bits apart, across groups 12-16: the map keeps them apart."""
    flips = [np.eye(16, dtype=np.uint8)[i] | np.eye(16, dtype=np.uint8)[j]
             for i in range(16) for j in range(i, 16)]  # fmt: skip
    low = np.array(flips)
    bits = np.concatenate([low, 1 - low])
    embedding = umap_embedding(pack_bits(bits), 16, random_state=0)
    assert embedding.shape == (len(bits), 2) and np.isfinite(embedding).all()
    a, b = embedding[: len(low)], embedding[len(low) :]
    gap = np.linalg.norm(a.mean(axis=0) - b.mean(axis=0))
    spread = max(np.linalg.norm(a - a.mean(axis=0), axis=1).max(),
                 np.linalg.norm(b - b.mean(axis=0), axis=1).max())  # fmt: skip
    assert gap > 2 * spread
    np.testing.assert_allclose(umap_embedding(pack_bits(bits), 16, random_state=0), embedding)
    with pytest.raises(InvalidInputError, match="at least 4 codes"):
        umap_embedding(pack_bits(bits[:3]), 16)


def test_class_distances_of_median_codes():
    codes = pack_bits(
        np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]])
    )
    result = class_distances(codes, np.array([0, 0, 1, 1, 2]), 4)
    # medians: class 0 -> 1100 (tie on bit 1 rounds up), class 1 -> 0011, class 2 -> 1111
    assert result.bit_strings == ["1100", "0011", "1111"]
    assert result.hex_codes == ["03", "0c", "0f"]  # bit 0 is the least significant bit
    assert result.distances.tolist() == [[0, 4, 2], [4, 0, 2], [2, 2, 0]]
    assert result.closest == (0, 2, 2) and result.farthest == (0, 1, 4)
    assert result.position(2) == 2


def test_tsne_embedding_is_seeded_and_samples():
    rng = np.random.default_rng(0)
    codes = pack_bits(rng.integers(0, 2, size=(60, 16)))
    positions, embedding = tsne_embedding(codes, 16, max_points=40, random_state=3)
    assert positions.shape == (40,) and np.all(np.diff(positions) > 0)
    assert embedding.shape == (40, 2) and np.isfinite(embedding).all()
    again = tsne_embedding(codes, 16, max_points=40, random_state=3)
    np.testing.assert_array_equal(positions, again[0])
    np.testing.assert_allclose(embedding, again[1])
    with pytest.raises(InvalidInputError, match="at least 4 codes"):
        tsne_embedding(codes[:3], 16)


def _colour_count(png, rgb):
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return int(np.all(pixels == rgb, axis=1).sum())


def _section(text, anchor):
    """The HTML of the report section ``anchor``."""
    return re.search(rf'<section id="{anchor}">.*?</section>', text, re.S).group(0)


def test_retrieval_grid_frames_and_colours():
    from hashlearn.report.figures import figure_png, retrieval_figure

    red = np.zeros((1, 6, 6, 3), np.float32)
    red[..., 0] = 1.0  # an RGB query, pure red
    grey = np.full((1, 2, 6, 6), 0.5, np.float32)  # grey results
    png = figure_png(
        retrieval_figure(
            red,
            ["zero"],
            grey,
            [["zero", "one"]],
            np.array([[0, 3]]),
            np.array([[True, False]]),
        )
    )
    assert png[:8] == PNG_SIGNATURE
    assert _colour_count(png, (255, 0, 0)) > 100  # RGB shown as is
    assert _colour_count(png, (127, 127, 127)) + _colour_count(png, (128, 128, 128)) > 100
    assert _colour_count(png, (44, 160, 44)) > 20  # green frame: same label
    assert _colour_count(png, (214, 39, 40)) > 20  # red frame: different label


def test_shallow_model_report_on_digits(tmp_path):
    """A features model: extractor fitted on the train part, all five figures."""
    from hashlearn.datasets import default_split, load_dataset
    from hashlearn.features import create_features
    from hashlearn.hashers import create_hasher

    split = default_split(load_dataset("digits"), random_state=1)
    train = create_features("pixels").fit(split.train.X).transform(split.train.X)
    hasher = create_hasher("itq", n_bits=16, random_state=0).fit(train)
    document = small_document()
    document["protocol"]["dataset"] = "digits"
    out = build_report(
        document, tmp_path / "digits.html", model=hasher, seed=1, tsne_points=150, verbose=False
    )
    text = out.read_text()
    assert "Model: itq, 16 bits" in text and "pixels features" in text
    caption = re.search(
        r"t-SNE \(init=&#x27;pca&#x27;, random_state=1, on \+-1 bits\) of the (\d+) distinct "
        r"codes among a seeded sample of 150 of the 1617 database codes\. Each distinct code is "
        r"drawn once, its area proportional to how many of those database codes equal it "
        r"\(1 to (\d+)\)",
        text,
    )
    distinct = distinct_codes(
        hasher.encode(create_features("pixels").fit(split.train.X).transform(split.database.X)),
        split.database.y,
        16,
        max_points=150,
        random_state=1,
    )
    assert caption and int(caption.group(1)) == len(distinct.codes) < 150
    assert int(caption.group(2)) == distinct.counts.max() > 1
    assert "180 queries, 1617 database items" in text
    assert len(re.findall(r'<td class="code">[0-9a-f]{4}</td>', _section(text, "classes"))) == 10
    assert len(re.findall(r'<td class="code">[0-9a-f]{4}</td>', _section(text, "retrieval"))) == 8
    assert "ties broken by database position" in text
    if HAVE_UMAP:
        assert (
            "UMAP (metric=&#x27;hamming&#x27; on the bits, n_neighbors=15, random_state=1)" in text
        )
        assert len(parse_page(text).images) == 7 and (tmp_path / "digits_files/umap.png").exists()
    else:
        assert UMAP_NOTE in text and len(parse_page(text).images) == 6
    assert "How the codes use their bits" in text and "mean |r| over pairs" in text


def test_collapsed_model_report_skips_the_map(tmp_path):
    """A model that gives every item the same code (an untrained deep model can) still reports:
    the t-SNE map is replaced by a note instead of failing inside scikit-learn."""
    from hashlearn.hashers import create_hasher

    hasher = create_hasher("lsh", n_bits=8, random_state=0).fit(np.ones((20, 64)))
    hasher.encode = lambda X: np.zeros((len(X), 1), dtype=np.uint8)
    document = small_document()
    document["protocol"]["dataset"] = "digits"
    out = build_report(document, tmp_path / "flat.html", model=hasher, verbose=False)
    text = out.read_text()
    assert text.count("Every database item has the same code") == 2  # t-SNE and UMAP
    assert "tsne.png" not in text and "umap.png" not in text
    assert len(parse_page(text).images) == 5
    assert "1,617 codes share one code" in text  # one bucket holds the whole database


def test_model_views_follow_the_requested_protocol(tmp_path, monkeypatch):
    """Also the UMAP map's skip path: without umap-learn the section is a note naming the extra."""
    from hashlearn.exceptions import UnknownNameError
    from hashlearn.hashers import create_hasher

    hasher = create_hasher("lsh", n_bits=8, random_state=0).fit(np.ones((20, 64)))
    document = small_document()
    document["protocol"]["dataset"] = "digits"
    with pytest.raises(UnknownNameError, match="cifar99"):
        build_report(document, tmp_path / "bad.html", model=hasher, protocol="cifar99")
    assert not (tmp_path / "bad.html").exists()
    monkeypatch.setitem(sys.modules, "umap", None)  # as if umap-learn were not installed
    (tmp_path / "ok_files").mkdir()
    (tmp_path / "ok_files" / "umap.png").write_bytes(b"left from an earlier run")
    out = build_report(
        document,
        tmp_path / "ok.html",
        model=hasher,
        protocol="default",
        seed=2,
        tsne_points=60,
        verbose=False,
    )
    text = out.read_text()
    assert "digits, protocol default with seed 2: 180 queries" in text
    assert f"{UMAP_NOTE}, which is not installed (pip install &#x27;hashlearn[umap]&#x27;)." in text
    assert "tsne.png" in text and not (tmp_path / "ok_files" / "umap.png").exists()


# -- Chromium -----------------------------------------------------------------------------------


def find_chromium():
    path = serve_support.find_chromium()
    if path is None:
        pytest.skip(serve_support.NO_CHROMIUM)
    return path


def render_in_chromium(html_path, profile):
    """The DOM of ``html_path`` after Chromium loaded it and ran its scripts."""
    command = [
        find_chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        html_path.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def check_in_browser(html_path, tmp_path, expected_files):
    """The page loads in Chromium, shows every figure, and the figures match the PNG files."""
    dom = render_in_chromium(html_path, tmp_path / "chromium-profile")
    page = parse_page(dom)
    assert page.title.startswith("hashlearn report")
    assert page.check.get("data-status") == "checked", page.check
    total = int(page.check["data-total"])
    assert total == len(expected_files) > 0
    assert int(page.check["data-ok"]) == total
    folder = html_path.with_name(html_path.stem + "_files")
    assert len(page.images) == total
    for uri, name in zip(page.images, expected_files):
        png = png_of(uri)
        on_disk = (folder / name).read_bytes()
        assert on_disk == png and len(on_disk) > 1000
    return dom


def test_results_report_in_chromium(tmp_path):
    out = build_report(small_document(), tmp_path / "report.html", verbose=False)
    check_in_browser(out, tmp_path, ["pr_curves.png", "radius_curves.png"])


# -- end to end on mnist5k ----------------------------------------------------------------------

E2E_METHODS = ["lsh", "itq", "grh", "dsh"]
E2E_BITS = [12, 32]
E2E_PARAMS = {"dsh": {"epochs": 2, "verbose": False}}


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """Benchmark results of lsh, itq, grh and dsh at 12 and 32 bits on mnist5k, and a DSH model."""
    from hashlearn.datasets import default_split, load_dataset
    from hashlearn.experiments import run_benchmark, write_results
    from hashlearn.hashers import create_hasher

    folder = tmp_path_factory.mktemp("mnist-report")
    results = folder / "results.json"
    start = time.perf_counter()
    rows = run_benchmark(
        "mnist5k", E2E_METHODS, E2E_BITS, [0], method_params=E2E_PARAMS, verbose=False
    )
    write_results(
        rows,
        str(folder / "results.csv"),
        str(results),
        {"methods": E2E_METHODS, "bits": E2E_BITS},
        total_s=time.perf_counter() - start,
    )
    split = default_split(load_dataset("mnist5k"), random_state=0)
    hasher = create_hasher("dsh", n_bits=12, random_state=0, **E2E_PARAMS["dsh"])
    hasher.fit(split.train.X, split.train.y)
    hasher.save(folder / "dsh.safetensors")
    return results, folder / "dsh.safetensors"


@pytest.mark.slow
def test_mnist_report_with_model_in_chromium(mnist_run, tmp_path):
    results, model = mnist_run
    document = json.loads(results.read_text())
    assert document["schema"] == 2
    assert {(r["method"], r["n_bits"]) for r in document["results"]} == {
        (m, b) for m in E2E_METHODS for b in E2E_BITS
    }
    # t-SNE of 1,000 codes (the default is 2,000) keeps the test short on 2 busy cores.
    out = build_report(
        results, tmp_path / "mnist.html", model=model, tsne_points=1000, verbose=False
    )
    text = out.read_text()
    expected = [
        "pr_curves.png",
        "radius_curves.png",
        "tsne.png",
        *(["umap.png"] if HAVE_UMAP else []),
        "class_distances.png",
        "bit_usage.png",
        "retrieval.png",
    ]
    assert sorted(p.name for p in (tmp_path / "mnist_files").iterdir()) == sorted(expected)
    for metric in ("mAP", "P@10"):
        rows = metric_rows(text, metric)
        assert list(rows) == E2E_METHODS
        assert sum("<strong>" in cells[0] for cells in rows.values()) >= 1
    assert f"seed 0: {document['protocol']['manifest']['0']}" in text
    assert "benchmark time" in text and document["metrics"]["mAP"] in text
    assert "Model: dsh, 12 bits" in text
    assert re.search(r"of the \d+ distinct codes among a seeded sample of 1000 of the", text)
    assert re.search(
        r"Closest classes: <strong>\d</strong> and <strong>\d</strong>, \d+ bits", text
    )
    classes = _section(text, "classes")
    assert len(re.findall(r'<td class="code">[0-9a-f]{4}</td>', classes)) == 10  # 12 bits: 2 bytes
    assert len(re.findall(r'<td class="code">[01]{12}</td>', classes)) == 10
    check_in_browser(out, tmp_path, expected)


def test_report_command(mnist_run, tmp_path, capsys):
    results, _ = mnist_run
    out = tmp_path / "cli.html"
    assert main(["report", "--results", str(results), "--out", str(out), "--quiet"]) == 0
    assert str(out) in capsys.readouterr().out
    assert parse_page(out.read_text()).check["data-total"] == "2"
    assert main(["report", "--results", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
    code = main(
        ["report", "--results", str(results), "--model", str(results), "--out", str(out), "--quiet"]
    )
    assert code == 2 and "error" in capsys.readouterr().err


def test_unknown_dataset_for_model(mnist_run, tmp_path):
    results, model = mnist_run
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist6k'"):
        build_report(results, tmp_path / "r.html", model=model, dataset="mnist6k", verbose=False)
    with pytest.raises(UnknownNameError, match="unknown feature extractor 'pixel'"):
        build_report(results, tmp_path / "r.html", model=_shallow_model(tmp_path), features="pixel")
    assert list(tmp_path.iterdir()) == [tmp_path / "lsh.safetensors"]  # nothing written


def _shallow_model(folder):
    from hashlearn.hashers import create_hasher

    path = folder / "lsh.safetensors"
    create_hasher("lsh", n_bits=8, random_state=0).fit(
        np.random.default_rng(0).random((20, 784))
    ).save(path)
    return path


def test_copy_of_document_is_not_changed():
    document = small_document()
    before = copy.deepcopy(document)
    load_results(document)
    group_rows(document)
    assert document == before


def test_report_command_shows_robustness_results(tmp_path, capsys):
    from _photos import photo_array, write_photo_folder
    from hashlearn import create_hasher
    from hashlearn.features import create_features
    from hashlearn.hashers import FeatureHasher

    results = tmp_path / "results.json"
    results.write_text(json.dumps(small_document()))
    model = FeatureHasher(create_features("hog"), create_hasher("itq", n_bits=8, random_state=0))
    model.fit(photo_array(48))
    model.resize_images_ = True
    model.save(tmp_path / "m.safetensors")
    write_photo_folder(tmp_path / "photos", max_side=64)
    robustness = tmp_path / "r.json"
    argv = ["robustness", "--model", str(tmp_path / "m.safetensors"), "--images"]
    argv += [str(tmp_path / "photos"), "--transforms", "identity,half", "--radius", "1"]
    assert main([*argv, "--quiet", "--out", str(robustness)]) == 0
    out = tmp_path / "page.html"
    argv = ["report", "--results", str(results), "--robustness", str(robustness)]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    text = out.read_text()
    assert "<h2>Near-duplicate robustness</h2>" in text and "<td>half</td>" in text
