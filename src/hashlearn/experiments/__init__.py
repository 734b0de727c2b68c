"""Experiments: benchmarks (methods x bits x seeds), hyper-parameter tuning and the demo.

A benchmark is described by a :class:`BenchmarkConfig` (:func:`make_config`, or a YAML file read
by :func:`load_config`; see :mod:`hashlearn.experiments.config`), run by :func:`run_config` into
one :class:`BenchmarkRow` per (method, bits, seed) and written by :func:`write_results` as CSV and
a JSON document that :mod:`hashlearn.report` turns into a page. :func:`tune` chooses a method's
parameters on the validation part and tests the choice once; the benchmark's ``grid`` makes the
same choice (:func:`select_params`) inside every run. :func:`run_demo` is the main job end to end
on real data, for ``hashlearn demo``.

The modules, in the order they build on each other: :mod:`~hashlearn.experiments.selection`
(fits and validation scores), :mod:`~hashlearn.experiments.config`,
:mod:`~hashlearn.experiments.results` (rows, tables, files), :mod:`~hashlearn.experiments.measure`
(one fitted method's row), :mod:`~hashlearn.experiments.run`, :mod:`~hashlearn.experiments.tuning`
and :mod:`~hashlearn.experiments.demo`.
"""

from hashlearn.experiments.config import BenchmarkConfig, MethodSpec, load_config, make_config
from hashlearn.experiments.demo import (
    METRIC_NOTE,
    DemoResult,
    MethodResult,
    format_demo,
    run_demo,
)
from hashlearn.experiments.measure import measure_run, radius_curve
from hashlearn.experiments.results import (
    SCHEMA_VERSION,
    BenchmarkRow,
    metric_definitions,
    summarize,
    write_results,
)
from hashlearn.experiments.run import run_benchmark, run_config
from hashlearn.experiments.selection import (
    Trial,
    fit_timed,
    metric_cutoffs,
    parameter_grid,
    select_params,
)
from hashlearn.experiments.tuning import TuneResult, tune, write_tune_result

__all__ = [
    "METRIC_NOTE",
    "SCHEMA_VERSION",
    "BenchmarkConfig",
    "BenchmarkRow",
    "DemoResult",
    "MethodResult",
    "MethodSpec",
    "Trial",
    "TuneResult",
    "fit_timed",
    "format_demo",
    "load_config",
    "make_config",
    "measure_run",
    "metric_cutoffs",
    "metric_definitions",
    "parameter_grid",
    "radius_curve",
    "run_benchmark",
    "run_config",
    "run_demo",
    "select_params",
    "summarize",
    "tune",
    "write_results",
    "write_tune_result",
]
