"""`gradax bench` with tiny counts: every path runs, verdicts are checked, figures are reported."""

from __future__ import annotations

import pytest

from graders.bench import percentile

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pool")]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_bench_measures_naive_cold_and_warm_paths_in_one_run(gradax) -> None:  # type: ignore[no-untyped-def]
    result = gradax("bench", "--submissions", "2", "--naive", "1", "--cold", "1", "--concurrency", "2",
                    "--throughput", "2", "--json", env={"GRADAX_POOL_SIZE": "2", "GRADAX_POOL_PREFORK": "1"},
                    timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.json()
    paths = out["paths"]
    assert paths["naive"]["n"] == 1 and paths["naive"]["verdicts"] == {"ran": 1}
    assert paths["cold"]["verdicts"] == {"accepted": 1}
    assert paths["warm"]["verdicts"] == {"accepted": 2}
    assert paths["warm_concurrent"]["verdicts"] == {"accepted": 2}
    assert paths["warm"]["p50_ms"] > 0 and paths["warm"]["p95_ms"] >= paths["warm"]["p50_ms"]
    assert out["throughput_per_s"] > 0
    assert out["pool_memory_peak_mb"] > 50  # at least the zygote with jax imported
    assert out["pool"]["stats"]["warm"] >= 4
    assert set(out["targets"]) == {"p50_ms", "ratio", "throughput_per_s"}
    assert out["ratio_naive_over_warm"] == pytest.approx(paths["naive"]["p50_ms"] / paths["warm"]["p50_ms"], rel=0.01)
