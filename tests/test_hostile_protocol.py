"""The protocol's own defences, each proved by a planted candidate with the screen off.

What is asserted comes from outside the candidate: the oracle's verdict, its failing trial
and its rule. An honest kernel on the same problems stays correct (no false rejection).
"""

from __future__ import annotations

import pytest

from conftest import TESTS
from hostile_clock import CLOCK_CHEATS
from hostile_digest import DIGEST_CHEATS
from hostile_edges import EDGE_CHEATS
from hostile_escapes import ESCAPE_CHEATS
from hostile_protocol import PROTOCOL_CHEATS, ProtocolCheat
from kernelscale.problems import load_problem


def _problem(ref: str):
    """A problem of tests/problems by its stem (scaled_exp, argmax_rows), else a built-in id."""
    planted = TESTS / "problems" / f"{ref}.py"
    return load_problem(planted if planted.is_file() else ref)


@pytest.mark.parametrize(
    "cheat",
    PROTOCOL_CHEATS + CLOCK_CHEATS + DIGEST_CHEATS + ESCAPE_CHEATS + EDGE_CHEATS,
    ids=lambda c: c.name,
)
def test_protocol_cheat_is_caught(cpu_pool, cheat: ProtocolCheat):
    if cheat.gpu_only:
        pytest.skip(f"GPU only ({cheat.gpu_only}); benchmarks/verifier_gpu.py runs it on a GPU")
    # an attention kernel under the interpreter takes seconds a call
    timeout = 300.0 if cheat.problem.startswith("attention/") else 60.0
    verdict = cpu_pool.verify(_problem(cheat.problem), cheat.source, screen=False, timeout_s=timeout)
    assert verdict.status == cheat.status, f"{cheat.attack}: {verdict.headline()}\n{verdict.log_tail}"
    if cheat.rule:
        assert verdict.rule == cheat.rule, verdict.headline()
    if cheat.reason_start:
        assert verdict.reason.startswith(cheat.reason_start), verdict.reason
    if cheat.failing_trial_prefix:
        assert (verdict.failing_trial or "").startswith(cheat.failing_trial_prefix), verdict.failing_trial


def test_torch_in_an_interpreted_kernel_is_screened(cpu_pool, scaled_exp):
    """A plain function called from a kernel's body runs on the host: the screen follows it
    there, and with the screen on the verdict names it."""
    from hostile_escapes import TORCH_IN_AN_INTERPRETED_KERNEL
    from kernelscale.verify.screen import screen

    found = screen(TORCH_IN_AN_INTERPRETED_KERNEL)
    assert [(v.rule, v.detail) for v in found] == [("torch_fallback", "`torch.exp`")], found
    verdict = cpu_pool.verify(scaled_exp, TORCH_IN_AN_INTERPRETED_KERNEL)
    assert (verdict.status, verdict.rule) == ("rejected", "torch_fallback"), verdict.headline()


def test_a_complex_output_is_held_to_its_parts_precision(cpu_pool):
    """complex_output_in_bf16's honest twin: cos and sin in fp32 pass at fp32's 1e-4."""
    from hostile_escapes import HONEST_COMPLEX_PHASE

    assert "to(tl.bfloat16)" not in HONEST_COMPLEX_PHASE
    verdict = cpu_pool.verify(_problem("complex_phase"), HONEST_COMPLEX_PHASE)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
    assert "atol=rtol=0.0001" in verdict.reason, verdict.reason


def test_an_honest_column_sort_is_correct(cpu_pool):
    """sorts_after_its_commit's honest twin: the digest's per-run weights refuse no honest sort."""
    from hostile_digest import HONEST_SORT_COLUMNS

    verdict = cpu_pool.verify(_problem("sort_columns"), HONEST_SORT_COLUMNS)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail


def test_outputs_at_the_edge_of_the_double_range_are_compared(cpu_pool):
    """overflows_the_error's honest twin: ±1e308 where the reference has them is correct (the
    norms of the whole-output check are taken relative to the largest element: no overflow)."""
    from hostile_escapes import HONEST_F64_EXTREMES, OVERFLOWS_THE_ERROR

    assert HONEST_F64_EXTREMES != OVERFLOWS_THE_ERROR
    verdict = cpu_pool.verify(_problem("f64_extremes"), HONEST_F64_EXTREMES, screen=False)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail


def test_a_verdict_always_has_a_timed_call(cpu_pool):
    """The timed loop never stops before its first call. On a GPU it stops by the clock, whose
    budget started before the checked warm-up call: a warm-up that outlasted it (stalls_its_warm_up)
    left no timed call, and the median of none was an exception in the oracle, a verifier error
    that stopped the search. The clock now starts after the warm-up (GPU only, planted), and a
    slow reference can still spend it: on the CPU, where timing stops by count, asking for no
    timed call showed the same; now one is made and reported."""
    import time

    from kernelscale.verify.options import VerifyOptions
    from kernelscale.verify.timing_rounds import TimingResult

    long_ago = time.monotonic() - 60.0  # the budget spent before the loop's first check
    assert not TimingResult().enough(VerifyOptions(), "cuda", long_ago)
    code = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    verdict = cpu_pool.verify(_problem("scaled_exp"), code, cpu_calls=0)
    assert verdict.status == "correct" and not verdict.verifier_fault, verdict.headline()
    assert verdict.time_stats["n"] == 1, verdict.time_stats


def test_every_timed_call_is_checked_and_counted(cpu_pool):
    """An honest kernel: correct, and the verdict says how many calls were compared."""
    code = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    verdict = cpu_pool.verify(_problem("scaled_exp"), code)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
    # 4 fresh + rescaled + 4 shifted + 4 mixed (two kinds, two dimensions) + the repeated first;
    # warm-up + 2 timed + after
    trials, timed = 14, 2
    assert verdict.time_stats["calls_checked"] >= trials + timed + 2
    assert "calls checked" in verdict.reason
    # the runner's host time per timed call, for the record (on the CPU the whole call): inside
    # every call's window, so its median is within the windows' (the outside figure subtracts an
    # estimated handshake, and can be the smaller by noise)
    assert 0 < verdict.time_stats["runner_host_median_ms"] <= verdict.time_stats["wall_median_ms"]


@pytest.mark.parametrize(
    "name", ["truncates_output_slab", "floods_the_channel", "nests_a_reply", "describes_a_broadcast_output"]
)
def test_the_oracle_survives_a_runner_that_breaks_the_channel(cpu_pool, scaled_exp, name):
    """The verdict is the candidate's (never a verifier error, never a retry on another worker,
    never the attempt's whole timeout), and the same oracle then verifies an honest kernel."""
    import time

    cheat = next(c for c in PROTOCOL_CHEATS + CLOCK_CHEATS + ESCAPE_CHEATS if c.name == name)
    pids, replaced = [w.pid for w in cpu_pool.pool.workers], cpu_pool.pool.replacements
    started = time.monotonic()
    verdict = cpu_pool.verify(scaled_exp, cheat.source, screen=False)
    assert verdict.status == "runtime_error" and "not the candidate" not in verdict.reason, verdict.reason
    assert "retried" not in verdict.reason and time.monotonic() - started < 55, verdict.reason
    honest = cpu_pool.verify(scaled_exp, (TESTS / "problems" / "good_scaled_exp.py").read_text())
    assert honest.status == "correct", honest.headline()
    assert [w.pid for w in cpu_pool.pool.workers] == pids and cpu_pool.pool.replacements == replaced


@pytest.mark.parametrize(
    "name",
    [
        "FORGES_A_VERIFIER_ERROR",
        "RAISES_A_VERIFIER_ERROR",
        "SHIPS_A_QUANTIZED_OUTPUT",
        "MUTATED_INPUTS_AS_A_NUMBER",
        "REASON_AS_AN_OBJECT",
        "PLANTS_THE_INPUT_SLAB",
        "SHIPS_AN_INFINITE_OFFSET",
        "REPORTS_A_HUGE_TIME",
    ],
)
def test_a_candidate_cannot_pass_its_failure_off_as_the_verifiers(cpu_pool, scaled_exp, name):
    """Words in a reason are the candidate's to write: the verdict stays the candidate's, the
    pool does not retry it elsewhere, and the search would not stop on it."""
    import hostile_clock
    from kernelscale.search.evaluator import is_verifier_failure

    retries = cpu_pool.pool.retries
    screened = name in ("RAISES_A_VERIFIER_ERROR", "PLANTS_THE_INPUT_SLAB")  # these pass the screen
    verdict = cpu_pool.verify(scaled_exp, getattr(hostile_clock, name), screen=screened)
    assert verdict.status in ("runtime_error", "rejected", "compile_error"), verdict.headline()
    assert isinstance(verdict.reason, str) and (verdict.rule is None or isinstance(verdict.rule, str))
    assert not verdict.verifier_fault and not is_verifier_failure(verdict), verdict.reason
    assert cpu_pool.pool.retries == retries and "retried" not in verdict.reason, verdict.reason


def test_a_failure_reply_is_held_to_text():
    """A runner's failure reply becomes the verdict's reason and rule: text, and bounded."""
    from kernelscale.verify.replies import MAX_REASON_CHARS, AttemptFailed, expect

    with pytest.raises(AttemptFailed) as caught:
        expect({"ok": False, "status": "correct", "reason": ["x"] * 10**5, "rule": {"a": 1}})
    verdict = caught.value.verdict
    assert verdict.status == "runtime_error" and not verdict.verifier_fault
    assert isinstance(verdict.reason, str) and len(verdict.reason) <= MAX_REASON_CHARS
    assert isinstance(verdict.rule, str)


def test_memory_held_by_the_candidate_is_its_failure_not_the_verifiers(cpu_pool):
    """Passes the screen: at import it "holds" memory (tests/problems/oom_reference.py stands in
    for a GPU whose memory the candidate took), and the oracle's next reference call runs out."""
    from kernelscale.search.evaluator import is_verifier_failure

    code = (TESTS / "problems" / "good_scaled_exp.py").read_text()
    code = code.replace("class ModelNew", 'torch.save(torch.zeros(1), "hoarding")\n\n\nclass ModelNew', 1)
    retries = cpu_pool.pool.retries
    verdict = cpu_pool.verify(load_problem(TESTS / "problems" / "oom_reference.py"), code)
    assert verdict.status == "runtime_error" and "ran out of memory" in verdict.reason, verdict.reason
    assert not is_verifier_failure(verdict) and cpu_pool.pool.retries == retries, verdict.reason


def test_torch_work_in_a_triton_launch_hook_is_recorded(monkeypatch):
    """Triton's runtime knobs run hooks inside JITFunction.run, which the recorder exempts; a
    launch hook sees the kernel's arguments (through `launch_metadata`). On a GPU the whole answer
    could be computed there with torch, unrecorded; the interpreter calls no such hook, so the
    launch is stood in for here: a `run` that calls the hook, as Triton's does."""
    import torch
    from triton import knobs

    from kernelscale.verify import op_policy

    class Launch:
        def run(self, x, out):
            if knobs.runtime.launch_enter_hook is not None:
                knobs.runtime.launch_enter_hook(None)

    def hook(_metadata):
        Launch.args[1].copy_(torch.exp(Launch.args[0]) * 2.0)

    op_policy._wrap_method(Launch, "run")
    x, out = torch.randn(8), torch.empty(8)
    Launch.args = (x, out)
    monkeypatch.setattr(knobs.runtime, "launch_enter_hook", hook)
    with op_policy.recording() as recorder:
        Launch().run(x, out)
    assert {"exp", "mul"} <= recorder.ops, recorder.ops
    monkeypatch.setattr(knobs.runtime, "launch_enter_hook", None)
    assert not op_policy._user_hooks_in_launch()  # Triton's own defaults (empty chains) run nothing
    with op_policy.recording() as recorder:
        Launch().run(x, out)  # no hook of the candidate's: the launch stays exempt
    assert not recorder.ops


def test_the_log_tail_is_read_from_the_log_the_oracle_opened_never_by_its_path(
    cpu_pool, scaled_exp, tmp_path
):
    """The attempt folder is the candidate's: it can put a link where child.log was. The oracle
    reads the log tail into the verdict (and the proposer's next prompt): by path, as root, it
    would read the link's target, any file on the host, into the candidate's feedback."""
    secret = tmp_path / "secret.txt"
    secret.write_text("sk-host-secret-that-must-not-leak\n")
    secret.chmod(0o600)
    code = (
        "import os\n\n"
        "os.unlink('child.log')\n"
        f"os.symlink({str(secret)!r}, 'child.log')\n"
        "raise RuntimeError('see the log')\n"
    )
    verdict = cpu_pool.verify(scaled_exp, code, screen=False)
    assert verdict.status != "correct"
    assert "sk-host-secret" not in verdict.log_tail + verdict.reason, verdict.log_tail


def test_compiling_into_the_recorder_is_screened(cpu_pool, scaled_exp):
    """`nn.Module.compile` is `torch.compile` by another name: the screen refuses it (and with
    the screen off, the recorder's handler is never compiled: test_protocol_cheat_is_caught)."""
    from hostile_escapes import COMPILES_INTO_THE_RECORDER
    from kernelscale.verify.screen import screen

    found = screen(COMPILES_INTO_THE_RECORDER)
    assert [(v.rule, v.detail) for v in found] == [("torch_compile", "`self.touch.compile`")], found
    verdict = cpu_pool.verify(scaled_exp, COMPILES_INTO_THE_RECORDER)
    assert (verdict.status, verdict.rule) == ("rejected", "torch_compile"), verdict.headline()


def test_computing_in_a_pointer_is_recorded_with_the_screen_on(cpu_pool, scaled_exp):
    """The screen passes it (its class's methods are not forward's by name); the recorder, no
    longer paused for a launch whose arguments are not plain, names it."""
    from hostile_escapes import COMPUTES_IN_A_POINTER
    from kernelscale.verify.screen import screen

    assert screen(COMPUTES_IN_A_POINTER) == []
    verdict = cpu_pool.verify(scaled_exp, COMPUTES_IN_A_POINTER)
    assert (verdict.status, verdict.rule) == ("rejected", "torch_fallback"), verdict.headline()


def test_a_result_that_computes_in_its_own_iter_is_refused(cpu_pool, scaled_exp):
    """With the screen on: only an exact tuple or list is unpacked, on the clock and under the
    recorder; a container of the candidate's own is refused before anything touches it."""
    import hostile_clock

    verdict = cpu_pool.verify(scaled_exp, hostile_clock.COMPUTES_IN_ITS_ITER)
    assert verdict.status == "rejected" and verdict.rule == "tensor_subclass", verdict.headline()
    assert "Later" in verdict.reason, verdict.reason


def test_a_runner_figure_under_its_window_counts_no_lower_than_the_window(cpu_pool, scaled_exp):
    """Its runner reports 60% of each call, inside the rule's slack: `correct`, but each call
    counts at least its outside figure less three handshake spreads."""
    import hostile_clock

    verdict = cpu_pool.verify(scaled_exp, hostile_clock.UNDERCUTS_ITS_WINDOW, screen=False)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail
    stats = verdict.time_stats
    floor = stats["outside_median_ms"] - 3 * stats["handshake_spread_ms"] - stats["harness_ms"]
    assert verdict.time_ms >= 0.9 * floor, (verdict.time_ms, stats["outside_median_ms"], stats["median_ms"])


def test_a_kernel_right_only_on_the_whole_negative_trial_is_caught_with_the_screen_on(cpu_pool):
    """max_from_zero_unless_all_negative passes the screen, and it is wrong: on a matrix whose
    rows mostly have a positive entry, an all-negative row gets 0. The whole-tensor negative
    trial cannot see that (every element is negative there, which it detects); the mixed-rows
    trial, where shifted rows sit beside plain ones, does."""
    from hostile_protocol import MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE
    from kernelscale.verify.screen import screen

    assert screen(MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE) == []
    verdict = cpu_pool.verify(_problem("ops/max_dim"), MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE)
    assert verdict.status == "incorrect", verdict.headline() + verdict.log_tail
    assert (verdict.failing_trial or "").startswith("mixed rows"), verdict.failing_trial


def test_a_row_min_without_a_negative_entry_is_checked_and_an_honest_one_passes(cpu_pool):
    """min_from_zero (masked lanes load 0) passed every trial before the positive shift: randn
    rows always hold a negative entry, and the negative trial keeps them so. Caught at
    "positive inputs" (test_protocol_cheat_is_caught); its twin, padded with +inf, passes every
    trial, the positive and mixed ones included."""
    from hostile_protocol import HONEST_ROW_MIN, MIN_FROM_ZERO
    from kernelscale.verify.screen import screen

    assert screen(MIN_FROM_ZERO) == []
    verdict = cpu_pool.verify(_problem("min_dim"), HONEST_ROW_MIN)
    assert verdict.status == "correct", verdict.headline() + verdict.log_tail


def test_a_column_reduction_right_only_on_the_whole_negative_trial_is_caught(cpu_pool):
    """column_max_from_zero_unless_all_negative passes the screen: the maximum of each column,
    started at 0 unless the whole tensor is negative. Rows shifted along the last dimension
    never make a column all-negative (each crosses plain rows); the mixed trial along the first
    dimension does, beside plain columns. Its honest twin (started at -inf) passes every trial."""
    from hostile_protocol import COLUMN_MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE, HONEST_COLUMN_MAX
    from kernelscale.verify.screen import screen

    assert screen(COLUMN_MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE) == []
    problem = _problem("column_max")
    cheat = cpu_pool.verify(problem, COLUMN_MAX_FROM_ZERO_UNLESS_ALL_NEGATIVE)
    assert cheat.status == "incorrect", cheat.headline() + cheat.log_tail
    assert (cheat.failing_trial or "").startswith("mixed rows along dim 0"), cheat.failing_trial
    honest = cpu_pool.verify(problem, HONEST_COLUMN_MAX)
    assert honest.status == "correct", honest.headline() + honest.log_tail


def test_the_negative_shift_stays_clear_of_zero_at_any_size():
    """-|x| came within 1.5e-4 of zero in a column of 8192 (its largest element), inside the
    tolerance of a running maximum started at 0, which then passed on an H200 at 8192 x 4096:
    the interpreter's 48 rows never showed it. Every element of the shifted set, and of every
    wholly shifted column of a mixed trial, sits at least 1/16 below zero, by a gap drawn per
    trial; the positive shift mirrors it."""
    import torch

    from kernelscale.verify.trials import Case, apply_shift

    gaps = set()
    for seed in range(6):
        x = torch.randn(8192, 32)
        (shifted,) = apply_shift([x], Case("negative inputs", seed, "negative"))
        assert -0.25 - 1e-3 < shifted.max() <= -1 / 16, shifted.max()
        gaps.add(round(float(shifted.max()), 3))
        (mirrored,) = apply_shift([x], Case("positive inputs", seed, "positive"))
        assert torch.equal(mirrored, -shifted)  # the positive shift: the same gap above zero
        (mixed,) = apply_shift([x], Case("mixed rows along dim 0", seed, "mixed", mix=("negative",), dim=-2))
        wholly = (mixed != x).all(dim=0)
        assert wholly.any() and mixed[:, wholly].max() <= -1 / 16
    assert len(gaps) == 6  # drawn per trial, no fixed level to start a maximum from


def test_an_attention_kernel_without_its_running_max_is_caught_and_an_honest_one_passes(cpu_pool):
    """attention_without_max passes the screen: exp of the raw logits, no running max and no
    rescaling, right wherever every logit stays inside exp's range, which every generic trial
    keeps them in. The attention problems' own trial gives each row's logits an offset of
    hundreds through one coordinate common to every key, without sharpening the softmax; the
    same kernel with its running max passes every trial, that one included."""
    from hostile_edges import ATTENTION_WITHOUT_MAX, HONEST_CAUSAL_ATTENTION
    from kernelscale.verify.screen import screen

    assert screen(ATTENTION_WITHOUT_MAX) == []
    problem = _problem("attention/causal")
    cheat = cpu_pool.verify(problem, ATTENTION_WITHOUT_MAX, timeout_s=300.0)
    assert cheat.status == "incorrect", cheat.headline() + cheat.log_tail
    assert cheat.failing_trial == "large scores", cheat.failing_trial
    honest = cpu_pool.verify(problem, HONEST_CAUSAL_ATTENTION, timeout_s=300.0)
    assert honest.status == "correct", honest.headline() + honest.log_tail


@pytest.mark.parametrize(
    "problem_ref, shift, cheat_name, honest_name",
    [
        # E[x^2] - E[x]^2: right on every randn row, whose mean is never large against its
        # spread; the offset trial (randn + 64) makes it cancel. The shipped example (two passes)
        # passes it.
        ("ops/layer_norm", "offset", "LAYER_NORM_ONE_PASS_VARIANCE", "HONEST_LAYER_NORM"),
        # x / ||x||: the reference's x / max(||x||, 1e-12) on every row whose norm is above
        # 1e-12, which every generic trial's rows are; rows of zeros give it NaN.
        ("ops/l2_normalize_rows", "zero", "L2_NORMALIZE_WITHOUT_FLOOR", "HONEST_L2_NORMALIZE"),
    ],
)
def test_an_opt_in_shift_catches_its_cheat_and_passes_the_honest_kernel(
    cpu_pool, problem_ref, shift, cheat_name, honest_name
):
    """Cheats that pass the screen and every generic trial, caught by the shifted trial their
    problem asks for, while the honest kernel passes that trial too."""
    import hostile_edges
    from kernelscale.verify.screen import screen

    cheat_source, honest_source = getattr(hostile_edges, cheat_name), getattr(hostile_edges, honest_name)
    assert screen(cheat_source) == []
    problem = _problem(problem_ref)
    assert shift in problem.edge_shifts
    cheat = cpu_pool.verify(problem, cheat_source)
    assert cheat.status == "incorrect", cheat.headline() + cheat.log_tail
    assert (cheat.failing_trial or "").startswith(f"{shift} inputs"), cheat.failing_trial
    honest = cpu_pool.verify(problem, honest_source)
    assert honest.status == "correct", honest.headline() + honest.log_tail


def test_a_softmax_without_its_max_subtraction_is_caught_and_a_stable_one_passes(cpu_pool):
    """exp(x) / sum(exp(x)) is right on every draw below exp's overflow (randn x 16 included);
    the softmax problem asks for the overflow trial (x 64), where it returns NaN. The same
    kernel with the max subtracted passes every trial, that one included."""
    from hostile_protocol import SOFTMAX_WITHOUT_MAX, STABLE_SOFTMAX
    from kernelscale.verify.screen import screen

    assert "tl.exp(x)" in SOFTMAX_WITHOUT_MAX and "tl.max" not in SOFTMAX_WITHOUT_MAX
    assert "floor" not in STABLE_SOFTMAX and "floor" not in SOFTMAX_WITHOUT_MAX
    assert screen(SOFTMAX_WITHOUT_MAX) == []
    problem = _problem("ops/softmax")
    assert "overflow" in problem.edge_shifts
    cheat = cpu_pool.verify(problem, SOFTMAX_WITHOUT_MAX)
    assert cheat.status == "incorrect", cheat.headline() + cheat.log_tail
    assert (cheat.failing_trial or "").startswith("overflow inputs"), cheat.failing_trial
    honest = cpu_pool.verify(problem, STABLE_SOFTMAX)
    assert honest.status == "correct", honest.headline() + honest.log_tail
