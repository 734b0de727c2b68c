"""Fixtures of the in-process service tests: LSH on the 8x8 digits, served with labels and images."""

from __future__ import annotations

import warnings

import pytest

from _serve_support import TOKEN, lsh_files, open_test_service


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """LSH (12 bits) on the 8x8 digits, indexed with ids 100.., labels, and PNGs of 30 items."""
    return lsh_files(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def service(files, tmp_path):
    service = open_test_service(files, tmp_path / "data")
    yield service
    service.close()


@pytest.fixture
def client(service):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    with warnings.catch_warnings():  # starlette's notice about its test client's HTTP library
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from hashlearn.serve import create_app

    return TestClient(create_app(service, token=TOKEN))
