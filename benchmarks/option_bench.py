"""A/B of compiler config options against the previous best config and FlexAttention, one process.

For each (variant, D) in PLAN: the run-2 best config ("base", docs/perf-notes.md), each option
config, and "base" again last (the spread between the two base timings is the noise floor);
every kernel is checked against the fp32 reference on batch 0 first, then timed with
`triton.testing.do_bench` (median, L2 flushed); FlexAttention (compiled, BlockMask) is timed in
the same process. JSON is rewritten after every variant; a compact table is printed last.

    python benchmarks/option_bench.py --out $OUT/options.json      # GPU, B=4 H=16 S=4096
    python benchmarks/option_bench.py --cpu-smoke                  # interpreter, tiny shape

An existing --out file is resumed: its variants are skipped, so a command can rerun the script
after a crash (a variant whose process died is recorded as such and not retried).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attention_bench as ab  # noqa: E402  (sets TRITON_INTERPRET / TRITON_CACHE_DIR first)
import torch  # noqa: E402

from kernelscale.problems.attention.baselines import flex_baseline, raise_dynamo_limits  # noqa: E402
from kernelscale.problems.module import import_source  # noqa: E402
from kernelscale.propose.compiler.generate import compile_mods, render  # noqa: E402
from kernelscale.propose.compiler.space import Config, fits  # noqa: E402

BIG = dict(block_m=128, block_n=128, num_warps=8, num_stages=3)  # run 2's best for cheap scores, D=128
MID = dict(block_m=128, block_n=64, num_warps=8, num_stages=3)
D64 = dict(block_m=128, block_n=64, num_warps=4, num_stages=3)  # run 2's best at D=64
SOFT = dict(block_m=64, block_n=64, num_warps=4, num_stages=3, fast_tanh=True, fixed_max=True)


def _opts(base: dict, **options: dict) -> list[tuple[str, dict]]:
    return [("base", base)] + list(options.items()) + [("base2", base)]


# Edit per experiment. Run 3's plan (lazy_rescale, block_n 32, num_stages 5 against these bases)
# is in commit cc85ebc with the options it measured; its results are in docs/perf-notes.md.
PLAN = [
    ("full", 128, _opts(BIG, n64={**MID})),
    ("relative_positional", 128, _opts(BIG)),
    ("alibi", 128, _opts(BIG)),
    ("causal", 128, _opts({**BIG, "reverse_m": True}, fwd={**BIG})),
    (
        "sliding_window",
        128,
        _opts({**BIG, "reverse_m": True}, fwd={**BIG}, n64_s4={**MID, "reverse_m": True, "num_stages": 4}),
    ),
    ("document", 128, _opts({**MID, "reverse_m": True}, fwd={**MID})),
    ("softcap", 128, _opts(SOFT)),
    ("natten2d", 128, _opts({**BIG, "reverse_m": True})),
    ("full", 64, _opts(D64, s4={**D64, "num_stages": 4})),
]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="option-bench.json")
    ap.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all of PLAN)")
    ap.add_argument("--deadline-s", type=float, default=400.0, help="start no new variant after this")
    ap.add_argument("--cpu-smoke", action="store_true", help="interpreter at a tiny shape: proves the script")
    return ap.parse_args()


def run_variant(name, D, options, device):
    problem, model, init, (q, k, v), shape = ab.build(name, D, device)
    score_mod, mask_mod, _ = init
    reference = model(q[:1], k[:1], v[:1])
    tol = 1e-2 if q.dtype != torch.float32 else 1e-4
    compiled = compile_mods(score_mod, mask_mod)
    row = {"variant": name, "D": D, "shape": shape, "flops": problem.flops, "options": []}
    for label, cfg in options:
        if device != "cuda":
            cfg = {**cfg, "fast_tanh": False}  # inline PTX does not run under the interpreter
        config = Config(**cfg)
        entry = {"label": label, "config": config.as_dict()}
        if device == "cuda" and not fits(config, D):
            entry["error"] = "does not fit in shared memory"
        else:
            try:
                mod = import_source(render(compiled, config), f"opt_{name}_{D}_{label}")
                with torch.device(device):
                    kernel = mod.ModelNew(*init)
                out = kernel(q, k, v)
                entry["max_abs_err"], entry["ok"] = ab.check(out, reference, tol)
                if entry["ok"]:
                    entry["ms"] = ab.timer(lambda kernel=kernel: kernel(q, k, v), device)
            except Exception as exc:  # a config that fails is a result, not a crash
                entry["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        row["options"].append(entry)
        print(f"  {name} D={D} {label}: {entry.get('ms', entry.get('error', 'incorrect'))}", flush=True)
    try:
        fn = flex_baseline(score_mod, mask_mod, dict(init[2]), torch.device(device))
        if fn is not None:
            row["flex_max_abs_err"], row["flex_ok"] = ab.check(fn(q, k, v), reference, tol)
            row["flex_ms"] = ab.timer(lambda: fn(q, k, v), device)
    except Exception as exc:
        row["flex_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return row


def table(rows) -> str:
    lines = [
        f"{'variant':20s} {'D':>3s} {'option':12s} {'ms':>7s} {'vs base':>7s} {'x flex':>6s} {'err':>8s}"
    ]
    for r in rows:
        base = [o["ms"] for o in r.get("options", []) if o["label"] in ("base", "base2") and "ms" in o]
        ref = min(base) if base else None
        flex = r.get("flex_ms")
        lines.append(f"{r['variant']:20s} {r['D']:3d} {'flex':12s} {flex or float('nan'):7.3f}")
        for o in r.get("options", []):
            ms = o.get("ms")
            if ms is None:
                lines.append(f"{'':20s} {'':3s} {o['label']:12s} {o.get('error', 'INCORRECT')[:60]}")
                continue
            rel = f"{ref / ms:7.3f}" if ref else "      -"
            xf = f"{flex / ms:6.2f}" if flex else "     -"
            lines.append(f"{'':20s} {'':3s} {o['label']:12s} {ms:7.3f} {rel} {xf} {o['max_abs_err']:8.1e}")
    return "\n".join(lines)


def main():
    args = parse_args()
    device = "cpu" if ab.SMOKE else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no GPU visible: use --cpu-smoke")
    raise_dynamo_limits()
    env = ab.environment(device)
    out, rows, start = Path(args.out), [], time.monotonic()
    if out.exists():  # resume after a crashed process: keep its rows, skip what it started
        rows = json.loads(out.read_text())["rows"]
    done = {(r["variant"], r["D"]) for r in rows}
    for name, D, options in PLAN:
        if (args.only and name not in args.only) or (name, D) in done:
            continue
        if time.monotonic() - start > args.deadline_s:
            print(f"deadline: skipping {name} D={D}", flush=True)
            continue
        crashed = {"variant": name, "D": D, "error": "the process died during this variant"}
        out.write_text(
            json.dumps({"environment": env, "interpreted": ab.SMOKE, "rows": rows + [crashed]}, indent=1)
        )
        try:
            rows.append(run_variant(name, D, options, device))
        except Exception as exc:
            rows.append({"variant": name, "D": D, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            print(f"{name} D={D} failed: {rows[-1]['error']}", flush=True)
        out.write_text(json.dumps({"environment": env, "interpreted": ab.SMOKE, "rows": rows}, indent=1))
    print(f"done in {time.monotonic() - start:.0f} s; {env}")
    print(table([r for r in rows if "error" not in r]))
    for r in rows:
        if "error" in r:
            print(f"{r['variant']} D={r['D']}: {r['error']}")


if __name__ == "__main__":
    main()
