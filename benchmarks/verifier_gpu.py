"""The verifier on a GPU: no false rejections, every planted cheat caught, its own cost.

Three phases, one JSON line per attempt, a deadline so one device call ends with what it has:
  examples  every shipped example against its ops problem (eager baseline only, except the
            problems named in --full-baselines, which also build torch.compile: the cost table)
  attention every built-in attention variant's first compiler kernel (eager baseline only)
  hostile   the planted candidates (classic and protocol) on the GPU

    python benchmarks/verifier_gpu.py --out $OUT/verifier.jsonl --deadline 540
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from importlib import resources
from pathlib import Path

from kernelscale.problems import list_problem_ids, load_problem
from kernelscale.verify.options import VerifyOptions
from kernelscale.verify.slots import SlotPool

TESTS = Path(__file__).resolve().parent.parent / "tests"


def example_jobs(full: set[str], only: list[str]):
    folder = Path(str(resources.files("kernelscale.examples")))
    for path in sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")):
        if only and path.stem not in only:
            continue
        problem = load_problem(f"ops/{path.stem}")
        if path.stem not in full:
            problem = problem.with_options(baselines=("eager",))
        yield "examples", path.stem, problem, path.read_text(), "correct"


def attention_jobs(shape: str):
    from kernelscale.propose.compiler.proposer import CompilerProposer

    proposer = CompilerProposer(device="cuda")
    for ref in list_problem_ids("attention"):
        problem = load_problem(f"{ref}{shape}").with_options(baselines=("eager",))
        yield "attention", ref, problem, proposer.first_kernel(problem), "correct"


def hostile_jobs():
    sys.path.insert(0, str(TESTS))
    from hostile_candidates import CHEATS
    from hostile_clock import CLOCK_CHEATS
    from hostile_digest import DIGEST_CHEATS
    from hostile_edges import EDGE_CHEATS
    from hostile_escapes import ESCAPE_CHEATS
    from hostile_protocol import PROTOCOL_CHEATS

    # an interpreted kernel's body is host Python only on the CPU: on a GPU that stub does not compile
    escapes = [c for c in ESCAPE_CHEATS if c.name != "torch_in_an_interpreted_kernel"]
    # a row of the projection's whole weight in one program: written for the interpreter's sizes
    edges = [c for c in EDGE_CHEATS if c.name != "matmul_softmax_without_max"]

    scaled = load_problem(TESTS / "problems" / "scaled_exp.py").with_options(baselines=("eager",))
    for cheat in PROTOCOL_CHEATS + CLOCK_CHEATS + DIGEST_CHEATS + escapes + edges:
        planted = TESTS / "problems" / f"{cheat.problem}.py"
        problem = (
            scaled
            if cheat.problem == "scaled_exp"
            else load_problem(planted if planted.is_file() else cheat.problem).with_options(
                baselines=("eager",)
            )
        )
        yield "hostile", cheat.name, problem, cheat.source, cheat.status
    clocks = ("side_stream", "forges_its_timings", "patches_event_elapsed_time", "patches_perf_counter")
    for cheat in sorted(CHEATS, key=lambda c: c.name not in clocks):  # the timer's attackers first
        if cheat.unscreened is not None and cheat.name not in ("exhausts_memory",):
            expected = cheat.gpu_unscreened or cheat.unscreened[0]
            yield "hostile-classic", cheat.name, scaled, cheat.source(), expected


async def run(args) -> None:
    started = time.monotonic()
    phases = {
        "examples": lambda: example_jobs(set(args.full_baselines), args.examples),
        "attention": lambda: attention_jobs(args.attention_shape),
        "hostile": hostile_jobs,
    }
    async with SlotPool.local(device="cuda") as pool:
        for phase in args.phases:
            for kind, name, problem, code, expected in phases[phase]():
                if args.names and name not in args.names:
                    continue
                if time.monotonic() - started > args.deadline:
                    print(f"deadline: skipped {kind} {name}", flush=True)
                    continue
                screen = kind != "hostile" and kind != "hostile-classic"
                t0 = time.monotonic()
                options = VerifyOptions(screen=screen, timeout_s=240)
                if phase in args.quick_phases:  # coverage, not the cost table: fewer timed calls
                    options.round_calls, options.max_calls = 5, 10
                verdict = await pool.verify(problem, code, options)
                row = {
                    "phase": kind,
                    "name": name,
                    "expected": verdict.status == expected,
                    "wall_s": round(time.monotonic() - t0, 2),
                } | verdict.to_json()
                row.pop("log_tail", None)
                with open(args.out, "a") as handle:
                    handle.write(json.dumps(row, default=str) + "\n")
                mark = "ok " if row["expected"] else "BAD"
                print(
                    f"{mark} {kind:15s} {name:28s} {verdict.headline()[:150]}  [{row['wall_s']} s]{_clock(verdict)}",
                    flush=True,
                )


def _clock(verdict) -> str:
    """The figures the timer rule joined, to see the margins of honest kernels."""
    stats = verdict.time_stats or {}
    if "outside_median_ms" not in stats:
        return ""
    steps = "; ".join(
        f"{step} {stats.get(f'{step}_median_ms', 0):.3f} vs trusted {stats.get(f'trusted_{step}_ms', 0):.3f}"
        f" (spread {stats.get(f'trusted_{step}_spread_ms', 0):.3f})"
        for step in ("stage", "key", "flush", "probe", "commit", "ship")
    )
    return (
        f"  own {stats.get('median_ms', 0):.4f} outside {stats['outside_median_ms']:.4f}"
        f" harness {stats.get('harness_ms', 0):.4f} ms;"
        f" {steps} ms; cost {verdict.cost_s}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("verifier.jsonl"))
    parser.add_argument("--deadline", type=float, default=540.0)
    parser.add_argument("--phases", nargs="*", default=["hostile", "examples", "attention"])
    parser.add_argument("--full-baselines", nargs="*", default=["softmax", "rms_norm", "layer_norm"])
    parser.add_argument("--attention-shape", default="")
    parser.add_argument("--examples", nargs="*", default=[], help="only these examples (all by default)")
    parser.add_argument("--names", nargs="*", default=[], help="only these examples, variants or cheats")
    parser.add_argument("--quick-phases", nargs="*", default=[], help="phases timed with 10 calls, not 20+")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
