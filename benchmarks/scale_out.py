"""Throughput on several GPUs: one suite through `kernelscale bench` with `--gpus 0`, then
`--gpus all`, then `--executor ray`, one after the other on the same machine.

The suite is attention variants (the compiler proposer, at the suite's default GPU shape) and ops
problems. The ops problems go through the LLM proposer against a local server that speaks the
OpenAI chat API (tests/fake_openai.py) and answers each prompt with the shipped example kernel
for the problem it names, with a comment that makes every answer new code, so the verifier works
on every attempt and the figure is the executors', not a model's. Each configuration starts cold:
its own store and its own HOME, Triton and Inductor caches, so no run reuses another's stored
baselines, calibration or compiled kernels. Per configuration: attempts, seconds, attempts per
minute and the best speedup over eager per problem. Writes scale_out.json under --out after
every configuration. The LLM proposer needs the `openai` package where this runs (a GPU image
without it fails every ops problem at once: carry its wheels).

    PYTHONPATH=src python3 benchmarks/scale_out.py --out $OUT/scale --budget 15s
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fake_openai import FakeOpenAI, r1  # noqa: E402

OPS = (
    "softmax",
    "rms_norm",
    "layer_norm",
    "add_mul_tanh",
    "cumsum",
    "matmul_bf16",
    "mean_dim",
    "transpose_copy",
)
ATTENTION = ("causal", "full", "alibi", "softcap", "document")
CONFIGS = {
    "local-1gpu": ["--gpus", "0"],
    "local-all": ["--gpus", "all"],
    "ray-all": ["--executor", "ray"],
    "cpu": ["--device", "cpu"],  # a check of this script on a machine without a GPU
}
REFERENCE = re.compile(r"## The reference: (\S+)")


class ExampleAnswers:
    """The fake model: the shipped example for the ops problem the prompt names, new each time."""

    def __init__(self):
        self.count = 0

    def __call__(self, body: dict) -> dict:
        self.count += 1
        text = "\n".join(str(m.get("content", "")) for m in body["messages"])
        names = REFERENCE.findall(text)
        stem = Path(names[-1]).stem if names else ""
        example = ROOT / "src" / "kernelscale" / "examples" / f"{stem}.py"
        if not example.is_file():
            return r1(None, prose=f"no example for {stem!r}")
        return r1(example.read_text() + f"\n# answer {self.count}\n")


def make_suites(folder: Path, ops: list[str], attention: list[str]) -> tuple[Path, Path]:
    ops_dir, att_dir = folder / "ops", folder / "attention"
    for target, source, names in (
        (ops_dir, ROOT / "src/kernelscale/problems/ops", ops),
        (att_dir, ROOT / "src/kernelscale/problems/attention/suite", attention),
    ):
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(source / f"{name}.py", target / f"{name}.py")
    return ops_dir, att_dir


def run_config(name: str, flags: list[str], suites: dict, args, server: FakeOpenAI) -> dict:
    home = args.work / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        TRITON_CACHE_DIR=str(home / "triton"),
        TORCHINDUCTOR_CACHE_DIR=str(home / "inductor"),
        KS_FAKE_KEY="unused",
    )
    db = home / "k.db"
    result = {"flags": flags, "commands": [], "seconds": 0.0}
    for suite, proposer in (("attention", "compiler"), ("ops", "llm")):
        cmd = [
            sys.executable,
            "-m",
            "kernelscale",
            "bench",
            str(suites[suite]),
            "--proposer",
            proposer,
            "--budget",
            args.budget,
            "--db",
            str(db),
            "--out",
            str(home / f"out-{suite}"),
            "--no-html",
            *flags,
        ]
        if proposer == "llm":
            cmd += ["--preset", "vllm", "--base-url", server.base_url, "--api-key-env", "KS_FAKE_KEY"]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        seconds = time.monotonic() - t0
        result["seconds"] += seconds
        tail = [line for line in (proc.stdout + proc.stderr).splitlines() if "Warning" not in line][-6:]
        result["commands"].append(
            {
                "suite": suite,
                "exit": proc.returncode,
                "seconds": round(seconds, 1),
                "cmd": " ".join(cmd[1:]),
                "tail": tail,
            }
        )
        print(
            f"{name} {suite}: exit {proc.returncode} in {seconds:.1f} s; " + " | ".join(tail[-2:]), flush=True
        )
    result.update(read_store(db))
    result["seconds"] = round(result["seconds"], 1)
    result["attempts_per_minute"] = (
        round(60 * result["attempts"] / result["seconds"], 2) if result["seconds"] else None
    )
    return result


def read_store(db: Path) -> dict:
    """Attempts, their statuses, and the best speedup over eager per problem (correct verdicts)."""
    if not db.is_file():
        return {"attempts": 0, "statuses": {}, "best_speedup": {}}
    con = sqlite3.connect(db)
    statuses = dict(con.execute("select status, count(*) from attempts group by status").fetchall())
    best = {}
    rows = con.execute(
        "select p.name, v.body from attempts a join problems p on p.hash = a.problem_hash "
        "join verdicts v on v.id = a.verdict_id where a.status = 'correct'"
    ).fetchall()
    for problem, body in rows:
        eager = (json.loads(body).get("speedup") or {}).get("eager")
        if eager is not None:
            key = Path(problem).stem if "/" in problem or problem.endswith(".py") else problem
            best[key] = round(max(best.get(key, 0.0), eager), 2)
    con.close()
    return {"attempts": sum(statuses.values()), "statuses": statuses, "best_speedup": best}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ks-scale"))
    parser.add_argument("--budget", default="15s", help="per problem, as `bench --budget` takes it")
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds for one bench command")
    parser.add_argument(
        "--configs", nargs="*", default=["local-1gpu", "local-all", "ray-all"], choices=list(CONFIGS)
    )
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    parser.add_argument("--attention", nargs="*", default=list(ATTENTION))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ops_dir, att_dir = make_suites(args.work / "suites", args.ops, args.attention)
    results = {"budget_per_problem": args.budget, "ops": args.ops, "attention": args.attention, "configs": {}}
    with FakeOpenAI(default=ExampleAnswers()) as server:
        for name in args.configs:
            try:
                results["configs"][name] = run_config(
                    name, CONFIGS[name], {"ops": ops_dir, "attention": att_dir}, args, server
                )
            except subprocess.TimeoutExpired as exc:
                results["configs"][name] = {"error": f"timed out after {exc.timeout} s"}
            (args.out / "scale_out.json").write_text(json.dumps(results, indent=1))
    rates = {k: v.get("attempts_per_minute") for k, v in results["configs"].items()}
    if rates.get("local-1gpu") and rates.get("local-all"):
        results["all_over_one"] = round(rates["local-all"] / rates["local-1gpu"], 2)
    if rates.get("local-all") and rates.get("ray-all"):
        results["ray_over_local"] = round(rates["ray-all"] / rates["local-all"], 2)
    (args.out / "scale_out.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "configs"} | {"rates": rates}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
