from hashlearn.experiments import format_demo, run_demo


def test_demo_runs_end_to_end_on_digits():
    result = run_demo(
        "digits",
        methods=("lsh", "dsh"),
        n_bits=12,
        random_state=0,
        method_params={"dsh": {"epochs": 8}},
        verbose=False,
    )
    assert [r.method for r in result.results] == ["lsh", "dsh"]
    for r in result.results:
        assert 0.0 < r.metrics["mAP"] <= 1.0 and 0.0 <= r.metrics["P@10"] <= 1.0
        assert r.encode_ms_per_item > 0 and r.search_ms_per_query > 0
        assert len(r.class_codes) == 10 and all(len(h) == 4 for _, h in r.class_codes)
        closest, farthest = r.class_pairs["closest"], r.class_pairs["farthest"]
        assert closest[2] <= farthest[2]
    text = format_demo(result)
    assert "method" in text and "closest classes" in text and "farthest classes" in text


def test_deep_methods_get_the_training_schedule():
    from hashlearn.experiments import demo_method_params

    assert demo_method_params(["lsh", "dsh"], epochs=5, patience=None) == {
        "dsh": {"epochs": 5, "patience": None}
    }
    assert demo_method_params(["lsh", "itq"], epochs=5, patience=2) == {}


def test_save_demo_writes_results_and_report(tmp_path):
    import json

    from hashlearn.experiments import save_demo

    result = run_demo("digits", methods=("lsh", "itq"), n_bits=8, verbose=False)
    files = save_demo(result, tmp_path / "out", verbose=False)
    assert files.csv == str(tmp_path / "out" / "demo-digits.csv")
    assert files.json == str(tmp_path / "out" / "demo-digits.json")
    assert files.report == tmp_path / "out" / "report.html" and files.report.is_file()
    assert files.method == "itq"
    document = json.loads((tmp_path / "out" / "demo-digits.json").read_text())
    assert [r["method"] for r in document["results"]] == ["lsh", "itq"]
    assert "hashlearn demo: lsh, itq on digits" in files.report.read_text()
