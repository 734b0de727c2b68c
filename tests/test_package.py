"""Packaging promises: import without torch, typed, the README starts with the two commands
(tests/test_readme.py runs its blocks)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_does_not_import_torch():
    code = (
        "import sys, hashlearn; from hashlearn import create_hasher, LinearIndex; "
        "create_hasher('lsh', n_bits=8).fit([[0.0, 1.0], [1.0, 0.0]]); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_py_typed_is_shipped():
    assert (ROOT / "src" / "hashlearn" / "py.typed").exists()


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^make \w+", text, flags=re.M)
    assert commands[:2] == ["make demo", "make test"]
