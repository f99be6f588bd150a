"""The first call of a compiled attention kernel in a fresh process and a fresh Triton cache, with
and without a one-element kernel compiled first (verify/warm_kernel.py, what a runner started
ahead does): how much of a candidate's first call is the compiler's one-time set-up.

Each sample is its own process: import torch and triton, make the CUDA context and Triton's
driver helpers, optionally compile the small kernel, then build the compiler's first kernel for
attention/causal (B=4, H=16, S=4096, D=128, bf16) and time its first call.

    python benchmarks/first_compile.py --out $OUT --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import torch, triton
from triton.runtime import driver
torch.empty(1, device="cuda"); driver.active.get_current_device()
t0 = time.monotonic()
if {warm}:
    from kernelscale.verify import warm_kernel
    warm_kernel.compile_and_run()
warm_s = time.monotonic() - t0
import attention_decode as ad
shape = {{"B": 4, "Hq": 16, "Hkv": 16, "Sq": 4096, "Skv": 4096, "D": 128, "dtype": "bfloat16"}}
case = ad.Case("causal", shape, ad.make_inputs(shape, "cuda"), "cuda")
model = case.model(case.configs()[0])
t0 = time.monotonic()
model(case.q, case.k, case.v)
torch.cuda.synchronize()
print(warm_s, time.monotonic() - t0)
"""


def sample(warm: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"TRITON_CACHE_DIR": cache}
        done = subprocess.run(
            [sys.executable, "-c", CHILD.format(here=str(HERE), warm=warm)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        return {"warm": warm, "error": done.stderr[-500:]}
    warm_s, first_s = map(float, done.stdout.split()[-2:])
    return {"warm": warm, "warm_kernel_s": warm_s, "first_call_s": first_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    samples = []
    for _ in range(args.repeats):
        for warm in (False, True):
            samples.append(sample(warm))
            print(json.dumps(samples[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "first-compile.json").write_text(json.dumps(samples, indent=1))


if __name__ == "__main__":
    main()
