"""Experiments: benchmarks (methods x bits x seeds), hyper-parameter tuning and the demo.

A benchmark is described by a :class:`BenchmarkConfig` (:func:`make_config`, or a YAML file read
by :func:`load_config`, or either with the defaults of ``hashlearn benchmark``:
:func:`benchmark_config`; see :mod:`hashlearn.experiments.config`), run by :func:`run_config` into
one :class:`BenchmarkRow` per (method, bits, seed) and written by :func:`write_results` (into a
folder: :func:`save_results`) as CSV and a JSON document that :mod:`hashlearn.report` turns into a
page; :func:`format_benchmark` is its summary as text. :func:`tune` chooses a method's
parameters on the validation part and tests the choice once; the benchmark's ``grid`` makes the
same choice (:func:`select_params`) inside every run. :func:`run_demo` is the main job end to end
on real data, for ``hashlearn demo`` (:func:`save_demo` writes its results and report).

The modules, in the order they build on each other: :mod:`~hashlearn.experiments.selection`
(fits and validation scores), :mod:`~hashlearn.experiments.methods`,
:mod:`~hashlearn.experiments.config`,
:mod:`~hashlearn.experiments.results` (rows, tables, files), :mod:`~hashlearn.experiments.measure`
(one fitted method's row), :mod:`~hashlearn.experiments.run`, :mod:`~hashlearn.experiments.tuning`
and :mod:`~hashlearn.experiments.demo`.
"""

from hashlearn.experiments.config import (
    BenchmarkConfig,
    MethodSpec,
    benchmark_config,
    load_config,
    make_config,
)
from hashlearn.experiments.demo import (
    METRIC_NOTE,
    DemoResult,
    DemoResultFiles,
    MethodResult,
    demo_method_params,
    format_demo,
    run_demo,
    save_demo,
)
from hashlearn.experiments.measure import measure_run, radius_curve
from hashlearn.experiments.methods import (
    deep_methods,
    expand_methods,
    method_grids_from,
    method_params_from,
)
from hashlearn.experiments.results import (
    SCHEMA_VERSION,
    BenchmarkRow,
    format_benchmark,
    metric_definitions,
    results_name,
    save_results,
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
    "DemoResultFiles",
    "MethodResult",
    "MethodSpec",
    "Trial",
    "TuneResult",
    "benchmark_config",
    "deep_methods",
    "demo_method_params",
    "expand_methods",
    "fit_timed",
    "format_benchmark",
    "format_demo",
    "load_config",
    "make_config",
    "measure_run",
    "method_grids_from",
    "method_params_from",
    "metric_cutoffs",
    "metric_definitions",
    "parameter_grid",
    "radius_curve",
    "results_name",
    "run_benchmark",
    "run_config",
    "run_demo",
    "save_demo",
    "save_results",
    "select_params",
    "summarize",
    "tune",
    "write_results",
    "write_tune_result",
]
