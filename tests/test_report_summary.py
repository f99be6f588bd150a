"""Summary numbers against hand-computed values (see build_gpu_run's docstring for the data)."""

from __future__ import annotations

import math

import pytest

from kernelscale.report.summary import (
    ProblemSummary,
    best_over_time,
    fast_p,
    flex_baseline,
    geomean,
    order_baselines,
    solved_curve,
    summarize_run,
)
from kernelscale.store.db import Store, StoreError
from test_report_data import correct, failed, make_store, problem, record


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store, ids = make_store(tmp_path_factory.mktemp("summary"))
    yield store, ids
    store.close()


@pytest.fixture(scope="module")
def gpu(built):
    store, ids = built
    return summarize_run(store, ids["gpu"])


def by_name(summary):
    return {p.name: p for p in summary.problems}


def test_correct_means_a_trusted_correct_attempt(gpu):
    probs = by_name(gpu)
    assert [probs[n].correct for n in sorted(probs)] == [True, True, True, False, False]
    assert (gpu.n_correct, gpu.n_problems, gpu.correctness_rate) == (3, 5, 0.6)
    assert probs["ops/e"].n_suspect == 1 and probs["ops/e"].best_time_ms is None  # suspect only


def test_best_is_fastest_trusted_attempt(gpu):
    a = by_name(gpu)["ops/a"]
    assert a.best_time_ms == pytest.approx(2 / 3)  # not the 0.1 ms suspect one
    assert a.speedup == {"eager": 3.0, "compile": 1.8}
    assert a.strongest_baseline == "compile" and a.speedup_over("strongest") == 1.8
    assert "MARK_a_2" in a.best_code
    assert (a.attempts, a.n_correct, a.n_suspect) == (4, 3, 1)


def test_time_to_first_correct_and_first_faster(gpu):
    probs = by_name(gpu)
    assert [probs[n].first_correct_s for n in ("ops/a", "ops/b", "ops/c", "ops/d")] == [
        30.0,
        40.0,
        20.0,
        None,
    ]
    assert [probs[n].first_fast_s for n in ("ops/a", "ops/b", "ops/c")] == [30.0, 40.0, None]  # c is 0.8x


def test_fast_p_over_all_problems_by_hand(gpu):
    eager, strongest = gpu.stats["eager"], gpu.stats["strongest"]
    # eager speedups of the correct problems: 3.0, 1.2, 0.8; five problems in all
    assert eager.fast_p == {0.0: 0.6, 1.0: 0.4, 1.5: 0.2, 2.0: 0.2}
    # strongest (compile): 1.8, 0.9, 0.5
    assert strongest.fast_p == {0.0: 0.6, 1.0: 0.2, 1.5: 0.2, 2.0: 0.0}
    assert eager.geomean == pytest.approx((3.0 * 1.2 * 0.8) ** (1 / 3))
    assert eager.median == pytest.approx(1.2) and strongest.median == pytest.approx(0.9)
    assert strongest.geomean == pytest.approx((1.8 * 0.9 * 0.5) ** (1 / 3))


def test_metadata_baselines_device_tolerance(gpu, built):
    assert gpu.baselines == ["eager", "compile"]
    assert gpu.devices == ["NVIDIA H100 80GB HBM3"]
    assert {p.tolerance for p in gpu.problems} == {"loose"}
    store, ids = built
    attention = summarize_run(store, ids["attention"])
    assert attention.baselines == ["eager", "flex", "sdpa_cudnn"]
    assert (
        attention.stats["strongest"].fast_p[1.0] == 0.5
    )  # full 1.05, causal 0.95, softcap 2.1, document 0.9


def test_interpreted_run_is_correctness_only(built):
    store, ids = built
    cpu = summarize_run(store, ids["cpu"])
    assert cpu.interpreted and cpu.correctness_rate == pytest.approx(2 / 3)
    assert all(p.speedup == {} and p.speedup_over("eager") is None for p in cpu.problems)
    assert all(v is None for stats in cpu.stats.values() for v in stats.fast_p.values())
    assert cpu.stats["eager"].geomean is None and cpu.baselines == []
    x = by_name(cpu)["ops/x"]
    assert x.best_time_ms == 40.0 and "MARK_x_0" in x.best_code  # the first correct, not the "faster" one
    assert x.device == "x86_64 (cpu)"


def test_fast_p_edge_cases():
    def prob(correct, speedup):
        return ProblemSummary("p", "h", "k", "done", 0.0, "strict", correct=correct, speedup=speedup)

    problems = [prob(True, {"eager": 2.0}), prob(True, {}), prob(False, {}), prob(True, {"eager": 1.0})]
    assert fast_p(problems, 0.0) == 0.75  # correct without a measured speedup still counts at p = 0
    assert fast_p(problems, 1.0) == 0.25  # strictly faster: 1.0x is not > 1
    assert fast_p(problems, 2.0) == 0.0
    assert fast_p([], 1.0) == 0.0
    assert geomean([]) is None and math.isclose(geomean([2.0, 8.0]), 4.0)


def test_tolerance_override_and_unknown_run(tmp_path):
    store = Store(tmp_path / "k.db")
    run = store.create_run("solve", "x", {})
    key = store.add_problem(run, problem("ops/t", 4, tolerance_override=5e-3))
    record(store, run, key, failed("timeout", "slow"), 3.0, "m")
    summary = summarize_run(store, run)
    assert summary.problems[0].tolerance == "atol=rtol=0.005"
    assert summary.problems[0].status == "pending" and summary.n_correct == 0
    assert summary.stats["eager"].fast_p[0.0] == 0.0
    with pytest.raises(StoreError):
        summarize_run(store, run + 1)


def test_curves(gpu, built):
    assert solved_curve(gpu.problems) == [(0.0, 0.0), (20.0, 0.2), (30.0, 0.4), (40.0, 0.6)]
    assert solved_curve(gpu.problems, "first_fast_s") == [(0.0, 0.0), (30.0, 0.2), (40.0, 0.4)]
    store, ids = built
    a_hash = by_name(gpu)["ops/a"].problem_hash
    curves = best_over_time(store.attempts(ids["gpu"], a_hash))
    assert curves == {"eager": [(30.0, 2.0), (50.0, 3.0)], "compile": [(30.0, 1.2), (50.0, 1.8)]}


def test_baseline_names():
    assert order_baselines({"sdpa_cudnn", "zeta", "compile", "flex", "eager"}) == [
        "eager",
        "compile",
        "flex",
        "sdpa_cudnn",
        "zeta",
    ]
    assert flex_baseline(["eager", "flex_triton", "sdpa"]) == "flex_triton"
    assert flex_baseline(["eager", "flex_flash", "flex"]) == "flex"
    assert flex_baseline(["eager"]) is None
    assert correct(1.0, {"eager": 2.0}).baselines == {"eager": 2.0}
