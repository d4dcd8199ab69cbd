"""`gradax bench` with tiny counts: every path runs, verdicts are checked, figures are reported."""

from __future__ import annotations

import json

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
    """All paths in one run, and the warm path interleaved with the same problem's copy without model checks
    (`--without-model-checks`: what the state checks cost)."""
    result = gradax("bench", "--submissions", "2", "--naive", "1", "--cold", "1", "--concurrency", "2",
                    "--throughput", "2", "--without-model-checks", "--json",
                    env={"GRADAX_POOL_SIZE": "3", "GRADAX_POOL_PREFORK": "1"}, timeout=900)
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
    # The copy really runs no model checks (no probe time in its reports), the problem itself does.
    off = paths["warm_no_model_checks"]
    assert off["verdicts"] == {"accepted": 2}
    assert "probes_cpu_ms" in paths["warm"]["parts_p50_ms"] and "probes_cpu_ms" not in off["parts_p50_ms"]
    cost = out["model_checks_cost_ms"]
    assert cost["probes_cpu_ms_p50"] == paths["warm"]["parts_p50_ms"]["probes_cpu_ms"]
    assert cost["p50_difference_ms"] == pytest.approx(paths["warm"]["p50_ms"] - off["p50_ms"], abs=0.11)
    assert isinstance(cost["paired_median_ms"], float)
    # Both paths' CPU time comes from the run's cgroup, and their paired difference is reported.
    assert paths["warm"]["parts_p50_ms"]["cpu_ms"] > 0 and off["parts_p50_ms"]["cpu_ms"] > 0
    assert isinstance(cost["paired_median_cpu_ms"], float)


def test_bench_bank_writes_a_per_problem_table_and_compares(gradax, small_bank, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`--bank` on two tiny problems: first and warm latencies, CPU per child, each problem's first known mistake
    warm (rejected), at once and once its child settled, a mixed phase, the JSON kept, and a second run compared
    against the first."""
    first, second = tmp_path / "bank.json", tmp_path / "bank2.json"
    env = {**small_bank.env(), "GRADAX_POOL_SIZE": "2", "GRADAX_POOL_PREFORK": "1"}
    args = ["bench", "--bank", "--only", "tiny-0", "tiny-1", "--warm-n", "2", "--mixed", "4", "--concurrency", "2"]
    result = gradax(*args, "--out", str(first), env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(first.read_text())
    assert set(out["problems"]) == {"tiny-0", "tiny-1"} and out["cores"] and len(out["load_before"]) == 3
    for row in out["problems"].values():
        assert row["verdicts"] == {"accepted": 3} and row["first_ms"] > 0 and row["warm_n"] == 2
        assert row["warm_p95_ms"] >= row["warm_p50_ms"] > 0 and row["run_cpu_p50_s"] is not None
        wrong = row["mistake"]  # the scaffold's first known mistake returns x unchanged
        # Twice as soon as its child is ready, twice once that child also settled (replayed the extra entries).
        assert wrong["id"] == "identity" and wrong["verdicts"] == {"wrong_answer": 4}, wrong
        assert wrong["warm_p95_ms"] >= wrong["warm_p50_ms"] > 0 and wrong["run_cpu_p50_s"] is not None
        assert wrong["settled_p95_ms"] >= wrong["settled_p50_ms"] > 0 and wrong["settled_run_cpu_p50_s"] is not None
        assert wrong["waiting_cpu_per_child_s"] is not None and wrong["waiting_cpu_per_child_s"] >= 0
    assert out["mixed"]["verdicts"] == {"accepted": 4} and out["mixed"]["graded_per_s"] > 0
    assert set(out["summary"]["targets"]) == {"first_p50_ms", "mixed_graded_per_s"}
    assert "tiny-0" in result.stdout and "mixed bank:" in result.stdout and "known mistake identity" in result.stdout
    assert out["summary"]["mistake_warm_p50_of_p50s_ms"] > 0 and out["summary"]["mistake_settled_p50_of_p50s_ms"] > 0
    assert "once its child settled" in result.stdout
    again = gradax(*args, "--only", "tiny-0", "--out", str(second), "--compare", str(first), env=env, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    compared = again.stdout.split("against ")[1]
    assert "warm_p50_ms " in compared and "mistake_warm_p50_ms " in compared, again.stdout
    assert "mistake_settled_p50_ms " in compared, again.stdout
