"""Self-contained HTML reports of benchmark results and of a model's codes.

>>> from hashlearn.report import build_report
>>> build_report("benchmark-results/benchmark-mnist5k-pixels.json", "report.html")  # doctest: +SKIP

See :func:`build_report`; the results document is read by :func:`load_results`.
"""

from hashlearn.report.build import build_report
from hashlearn.report.document import load_results

__all__ = ["build_report", "load_results"]
