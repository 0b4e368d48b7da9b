"""Issue #8 item 14: a fresh process imports `function_app` in under 1.5 s (the Functions worker's
cold start before the first invocation). Median of 3 fresh processes after a warm-up; the figure
with its conditions is in BENCHMARKS.md (`make bench BENCH=cold_start`)."""

from __future__ import annotations

import statistics

from benchmarks.cold_start_bench import TARGET_S, time_once


def test_importing_the_function_app_takes_under_one_and_a_half_seconds() -> None:
    time_once("import function_app")  # warm-up: bytecode compiled
    median = statistics.median(time_once("import function_app") for _ in range(3))
    assert median < TARGET_S, f"import function_app took {median:.2f} s (median of 3)"
