"""hashlearn._progress: a tqdm bar on a terminal, whole lines (never a carriage return) elsewhere."""

import io
import re

import pytest
from tqdm import tqdm

from hashlearn._progress import LineProgress, progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_terminal_gets_a_tqdm_bar():
    stream = Terminal()
    with progress(total=5, desc="encode", unit="img", file=stream) as bar:
        assert isinstance(bar, tqdm)
        for _ in range(5):
            bar.update(1)
    assert "\r" in stream.getvalue() and "5/5" in stream.getvalue()


def test_a_file_gets_lines_without_carriage_returns():
    stream = io.StringIO()
    seen = list(progress(range(1000), desc="rank", unit="block", file=stream))
    assert seen == list(range(1000))
    text = stream.getvalue()
    assert "\r" not in text
    # a fast loop writes its last line only
    assert re.fullmatch(r"rank: 1000/1000 block \(100%\), done in \d+\.\d s\n", text), text


def test_lines_at_each_tenth_at_most_every_min_interval():
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(stream=stream, total=1000, desc="encode", unit="img", clock=clock)
    for _ in range(100):  # 10 img per second: each tenth takes 10 s
        clock.now += 1.0
        bar.update(10)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "encode: 100/1000 img (10%), 10.0 s"
    assert lines[4] == "encode: 500/1000 img (50%), 50.0 s"
    assert lines[-2:] == [
        "encode: 900/1000 img (90%), 90.0 s",
        "encode: 1000/1000 img (100%), done in 100.0 s",  # reaching the total: close()'s line
    ]
    assert len(lines) == 10


def test_fast_progress_is_throttled_and_slow_progress_still_reports():
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(stream=stream, total=100, desc="fit", unit="epoch", clock=clock)
    for _ in range(50):  # 50 epochs in 1 s: past five tenths, but within min_interval
        clock.now += 0.02
        bar.update()
    assert stream.getvalue() == ""
    clock.now += LineProgress.min_interval
    bar.update()  # 51%: a tenth further and 2 s later
    bar.set_postfix({"loss": "0.1234"}, val_mAP="0.5")
    clock.now += LineProgress.max_interval  # stuck in the same tenth for 30 s
    bar.update()
    bar.close()
    bar.close()  # closing twice writes nothing more
    assert stream.getvalue().splitlines() == [
        "fit: 51/100 epoch (51%), 3.0 s",
        "fit: 52/100 epoch (52%), 33.0 s, loss=0.1234, val_mAP=0.5",
        "fit: 52/100 epoch (52%), stopped after 33.0 s, loss=0.1234, val_mAP=0.5",
    ]


def test_bytes_without_total_and_disabled():
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(stream=stream, unit="B", divisor=1024, desc="mnist.npz", clock=clock)
    clock.now += 31.0
    bar.update(3 * 1024 * 1024)
    bar.close()
    assert stream.getvalue().splitlines() == [
        "mnist.npz: 3.00MB, 31.0 s",
        "mnist.npz: 3.00MB, done in 31.0 s",
    ]
    quiet = io.StringIO()
    with progress(total=10, desc="encode", disable=True, file=quiet) as bar:
        bar.update(10)
    assert list(progress([1, 2], disable=True, file=quiet)) == [1, 2]
    assert quiet.getvalue() == ""


def test_counting_bar_cannot_be_iterated():
    with pytest.raises(TypeError, match="counts update"):
        list(progress(total=3, file=io.StringIO()))


def test_library_progress_is_plain_on_captured_stderr(capsys, monkeypatch):
    """A real call site (the GIST extractor on real digits) under pytest's captured stderr."""
    import hashlearn.features.base
    from hashlearn.datasets import load_dataset
    from hashlearn.features import create_features

    images = load_dataset("digits").X[:40]
    monkeypatch.setattr(hashlearn.features.base, "PROGRESS_MIN_SAMPLES", 10)
    create_features("gist", image_size=16, batch_size=7, verbose=True).fit_transform(images)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert re.fullmatch(r"gist: 40/40 img \(100%\), done in \d+\.\d s\n", err), err
