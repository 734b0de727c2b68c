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
