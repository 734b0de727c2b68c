"""schemathesis against the running service's ``/openapi.json``, every check (issue 18: "0 failures
in the suite"): the schema states what the service answers, and no generated request, valid or
not, gets a server error, an undocumented status, a response off its schema, a missing ``Allow``
or a write that ignores the token. Bounded: a fixed seed, 30 examples per operation (about 840
test cases, 20 s here); ``tests/serve/schemathesis.toml`` holds the one setting of the checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="the dev extra (schemathesis) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")

from _child_server import ChildServer
from _serve_support import TOKEN

CONFIG = Path(__file__).with_name("schemathesis.toml")
_RUN = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


def test_schemathesis_finds_no_failure_with_every_check(files, tmp_path):
    """Pins item 13 as schemathesis reads it: 422s documented but never given, unbounded k and
    limit, an unresolvable ``#/$defs/ItemIn``, 405 without ``Allow``."""
    report = tmp_path / "schemathesis.json"
    # --resize: pictures of any size are taken, so generated images reach the search and the store
    with ChildServer(
        files, tmp_path / "data", tmp_path / "server.log", token=TOKEN, resize=True
    ) as server:
        command = [
            sys.executable, "-c", _RUN, "--config-file", str(CONFIG), "--no-color",
            "run", server.url + "/openapi.json",
            "--checks", "all", "--header", f"Authorization: Bearer {TOKEN}",
            "--max-examples", "30", "--seed", "0", "--workers", "1",
            "--generation-database", "none", "--request-timeout", "20",
            "--report", "json", "--report-json-path", str(report),
            "--report-dir", str(tmp_path / "reports"),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert report.exists(), run.stdout[-4000:] + run.stderr[-4000:]
    result = json.loads(report.read_text())
    cases = result["test_cases"]
    print(
        f"schemathesis: {cases['generated']} test cases over {result['operations']['tested']} "
        f"operations, {cases['unique_failures']} failures, {len(result['errors'])} errors, "
        f"{result['running_time']:.0f} s"
    )
    assert result["failures"] == [] and result["errors"] == [], run.stdout[-6000:]
    assert run.returncode == 0, run.stdout[-6000:]
    assert result["operations"]["tested"] == 9 and cases["generated"] > 300
    assert result["warnings"]["unresolvable_reference"] == []
