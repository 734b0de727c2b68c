"""The README runs as written: every shell and Python block after the two set-up commands.

Each fenced ```bash / ```sh / ```console / ```python block of README.md is one test, run in README
order in one temporary folder that holds what the blocks read from a fresh clone (``COPIED``) and
a ``.venv`` link to the environment running the tests: shell blocks with ``bash -e``, Python blocks
with this interpreter, the environment's ``bin`` first on PATH and this checkout's package first on
PYTHONPATH. An HTML comment just before a block (one directive per comment, several allowed)
changes how it runs; the README's raw text shows every change:

``<!-- readme-test: skip REASON -->``
    not run; pytest lists the block and the reason among the skips.
``<!-- readme-test: replace OLD => NEW -->``
    run with OLD replaced by NEW (smaller settings, the test's port); OLD must occur in the block.
``<!-- readme-test: serve N -->``
    a server: started in the background, it must answer ``GET /health`` on ``$PORT``; the next
    N blocks run while it is up, then it is stopped.
``<!-- readme-test: check lines 1-2, 11 against the previous block -->`` (or ``against `CMD` ``)
    on a ```text block of output: those lines must appear in the output of the previous block (or
    of the shell command CMD), read loosely: any number stands for any number, any run of spaces
    for any run of spaces.

A block that fails names its README line, the block as run and its stderr; the blocks after it
fail at once, naming the first failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import hashlearn

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COPIED = ("examples", "benchmarks/configs")  # what the blocks read from the clone
RUN_LANGUAGES = {"bash": "shell", "sh": "shell", "console": "shell", "python": "python"}
BLOCK_TIMEOUT_S = 300
HEALTH_TIMEOUT_S = 120

_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?"


@dataclass
class Block:
    line: int  # README line of the opening fence
    language: str
    code: str
    directives: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"README.md:{self.line}-{self.language}"


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text`` with the ``readme-test`` directives just above it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        directives: list[str] = []
        j = start - 1
        while j >= 0 and (_DIRECTIVE.match(lines[j]) or not lines[j].strip()):
            if lines[j].strip():
                directives.insert(0, _DIRECTIVE.match(lines[j]).group(1))
            j -= 1
        blocks.append(Block(start + 1, match.group(1), "\n".join(body) + "\n", directives))
        i += 1
    return blocks


def _is_run(block: Block) -> bool:
    """A block of code, or a block of output with a ``check`` directive."""
    if block.language == "text":
        return any(d.split()[0] == "check" for d in block.directives)
    return block.language in RUN_LANGUAGES


BLOCKS = parse_blocks(README.read_text())
RUNNABLE = [b for b in BLOCKS if _is_run(b)]
DIRECTIVES = ("skip", "replace", "serve", "check")


def _line_numbers(spec: str) -> list[int]:
    numbers: list[int] = []
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    return numbers


def _loose(line: str) -> re.Pattern:
    pattern = ""
    for token in re.split(rf"({_NUMBER}|\s+)", line.strip()):
        if not token:
            continue
        if re.fullmatch(_NUMBER, token):
            pattern += _NUMBER
        elif token.isspace():
            pattern += r"\s+"
        else:
            pattern += re.escape(token)
    return re.compile(rf"^\s*{pattern}\s*$")


class Session:
    """The working folder, the environment, the server that is up, and the first failure."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        self.env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        package_root = str(Path(hashlearn.__file__).resolve().parents[1])
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, self.env.get("PYTHONPATH", "")) if p
        )
        self.env["PORT"] = str(self.port)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.last_output = ""
        self.failed: str | None = None
        self.server: subprocess.Popen | None = None
        self.server_blocks_left = 0
        self.server_log: Path | None = None

    def command(self, block: Block) -> tuple[list[str], str]:
        code = block.code
        for directive in block.directives:
            if directive.startswith("replace "):
                old, sep, new = directive[len("replace ") :].partition(" => ")
                assert sep, f"{block.name}: write `replace OLD => NEW`, not {directive!r}"
                assert old in code, f"{block.name}: `{old}` (to replace) is not in the block"
                code = code.replace(old, new.replace("$PORT", str(self.port)))
        if RUN_LANGUAGES[block.language] == "shell":
            return ["bash", "-e", "-c", code], code
        return [sys.executable, "-c", code], code

    def execute(self, argv: list[str]) -> subprocess.CompletedProcess:
        """``argv`` run in the README's folder and environment, its output captured."""
        return subprocess.run(
            argv,
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )

    def run(self, block: Block) -> None:
        argv, code = self.command(block)
        if any(d.startswith("serve") for d in block.directives):
            self.start_server(block, argv, code)
            return
        try:
            done = self.execute(argv)
        except subprocess.TimeoutExpired:
            self.fail(block, code, f"still running after {BLOCK_TIMEOUT_S} s", "")
        self.last_output = done.stdout + done.stderr
        if done.returncode != 0:
            self.fail(block, code, f"exit status {done.returncode}", done.stderr or done.stdout)

    def start_server(self, block: Block, argv: list[str], code: str) -> None:
        (count,) = re.fullmatch(r"serve\s*(\d*)", _directive(block, "serve")).groups()
        self.server_log = self.folder / f"server-line-{block.line}.log"
        with open(self.server_log, "w") as log:
            self.server = subprocess.Popen(
                argv,
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.server_blocks_left = int(count or 0)
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.fail(block, code, "the server stopped", self.server_log.read_text())
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            self.stop_server()
            self.fail(block, code, f"no answer on {url}", self.server_log.read_text())
        if self.server_blocks_left == 0:
            self.stop_server()

    def after(self, block: Block) -> None:
        if self.server is not None and block.language in RUN_LANGUAGES:
            if not any(d.startswith("serve") for d in block.directives):
                self.server_blocks_left -= 1
                if self.server_blocks_left <= 0:
                    self.stop_server()

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        self.server = None

    def check(self, block: Block) -> None:
        directive = _directive(block, "check")
        match = re.fullmatch(
            r"check lines ([\d,\s-]+) against (the previous block|`(.+)`)", directive
        )
        assert match, f"{block.name}: cannot read the directive {directive!r}"
        output = self.last_output
        if match.group(3):
            done = self.execute(["bash", "-e", "-c", match.group(3)])
            output = done.stdout + done.stderr
            if done.returncode != 0:
                self.fail(block, match.group(3), f"exit status {done.returncode}", output)
        produced = re.split(r"[\r\n]+", output)
        shown = block.code.splitlines()
        numbers = _line_numbers(match.group(1))
        assert max(numbers) <= len(shown), f"{block.name}: the block has {len(shown)} lines"
        missing = [
            f"  README.md line {block.line + n}: {shown[n - 1]}"
            for n in numbers
            if not any(_loose(shown[n - 1]).match(line) for line in produced)
        ]
        if missing:
            self.failed = f"README.md line {block.line}"
            pytest.fail(
                f"README.md line {block.line}: these lines of the output shown are not in the output"
                f" of {match.group(3) or 'the previous block'}:\n"
                + "\n".join(missing)
                + "\n--- output ---\n"
                + output[-4000:],
                pytrace=False,
            )

    def fail(self, block: Block, code: str, what: str, stderr: str) -> None:
        self.failed = f"README.md line {block.line}"
        pytest.fail(
            f"README.md line {block.line} ({block.language} block): {what}\n"
            f"--- the block as run (in {self.folder}) ---\n{code}"
            f"--- stderr ---\n{stderr[-4000:]}",
            pytrace=False,
        )


def _directive(block: Block, word: str) -> str:
    return next(d for d in block.directives if d.split()[0] == word)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    for name in COPIED:
        shutil.copytree(ROOT / name, folder / name)
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    state = Session(folder)
    yield state
    state.stop_server()


def test_readme_starts_with_the_two_set_up_commands():
    first = BLOCKS[0]
    commands = [line.split("#")[0].strip() for line in first.code.splitlines()]
    assert commands == ["make demo", "make test"]
    assert any(d.startswith("skip ") for d in first.directives)


def test_every_block_is_code_output_or_a_diagram():
    # a block in another language (```shell, ```py) would silently not run
    for block in BLOCKS:
        assert block.language in {*RUN_LANGUAGES, "text", ""}, f"{block.name}: unknown language"


def test_every_directive_is_known():
    for block in BLOCKS:
        for directive in block.directives:
            assert directive.split()[0] in DIRECTIVES, f"{block.name}: {directive!r}"


def test_every_skip_gives_a_reason():
    for block in BLOCKS:
        for directive in block.directives:
            if directive.split()[0] == "skip":
                assert len(directive.split()) > 3, f"{block.name}: say why it is skipped"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_readme_block(block: Block, session: Session):
    skip = [d for d in block.directives if d.split()[0] == "skip"]
    if skip:
        pytest.skip(f"{block.name}: {skip[0][len('skip ') :]}")
    if session.failed:
        pytest.fail(f"not run: {session.failed} failed before it", pytrace=False)
    if block.language == "text":
        session.check(block)
        return
    try:
        session.run(block)
    finally:
        session.after(block)
