"""``hashlearn demo --serve`` and ``hashlearn serve`` from the command line, the server replaced
by an in-process client."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from hashlearn.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_demo_serve_prepares_a_folder_and_serves_it(tmp_path, monkeypatch, capsys):
    import hashlearn.serve.app
    from hashlearn.cli import main

    served = {}

    def fake_run_server(service, **options):
        served.update(options, stats=service.stats())
        png = (tmp_path / "demo" / "queries" / "query-0-label-3.png").read_bytes()
        response = TestClient(create_app(service)).post(
            "/search?k=5", files={"image": ("q.png", png)}
        )
        served["hits"] = response.json()["hits"]

    monkeypatch.setattr(hashlearn.serve.app, "run_server", fake_run_server)
    argv = ["demo", "--serve", "--methods", "lsh", "--bits", "16", "--quiet"]
    argv += ["--serve-dir", str(tmp_path / "demo"), "--port", "8123"]
    assert main(argv) == 0
    assert served["port"] == 8123 and served["host"] == "127.0.0.1"
    stats = served["stats"]
    assert (stats["items"], stats["method"], stats["bits"]) == (4500, "lsh", 16)
    assert stats["image_shape"] == [28, 28, 1] and stats["labels"] == list(range(10))
    assert len(served["hits"]) == 5 and all(hit["has_image"] for hit in served["hits"])
    assert len(list((tmp_path / "demo" / "images").glob("*.png"))) == 4500
    assert len(list((tmp_path / "demo" / "queries").glob("*.png"))) == 20
    out = capsys.readouterr().out
    assert "open http://127.0.0.1:8123/" in out
    assert main(argv) == 0  # same settings: the folder is reused, nothing is fitted again
    assert "reusing" in capsys.readouterr().out


def test_serve_command_reports_bad_files(tmp_path, capsys):
    from hashlearn.cli import main

    assert main(["serve", "--model", str(tmp_path / "none"), "--index", "x"]) == 2
    assert f"{tmp_path / 'none'}: no such file" in capsys.readouterr().err
