"""Compile a generated Gluon module's kernel for sm_90 on a machine without a GPU.

Triton compiles for a target it is told of, down to a cubin with its bundled ptxas, without a
driver: what a launch would compile is compiled here from the arguments the module's own plan
builds, so the types, the TMA descriptors' blocks and the constexprs are the ones a GPU run uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import torch
import triton

DTYPES = {
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.float32: "fp32",
    torch.int32: "i32",
    torch.int64: "i64",
    torch.uint8: "u8",
}
HOPPER = ("cuda", 90, 32)


def gluon_compiler_available() -> bool:
    try:
        from triton.experimental.gluon._runtime import GluonASTSource  # noqa: F401
    except ImportError:
        return False
    return True


def _signature(fn, args) -> tuple[dict, dict]:
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    sig, constexprs = {}, {}
    for i, (name, arg) in enumerate(zip(fn.arg_names, args)):
        if i in fn.constexprs:
            sig[name], constexprs[name] = "constexpr", arg
        elif isinstance(arg, TensorDescriptor):
            sig[name] = f"tensordesc<{DTYPES[arg.base.dtype]}{list(arg.block_shape)},{arg.layout!r}>"
        elif isinstance(arg, torch.Tensor):
            sig[name] = "*" + DTYPES[arg.dtype]
        elif isinstance(arg, bool):
            sig[name] = "i1"
        elif isinstance(arg, int):
            sig[name] = "i32" if -(2**31) <= arg < 2**31 else "i64"
        elif isinstance(arg, float):
            sig[name] = "fp32"
        else:
            raise TypeError(f"argument {name}: {type(arg).__name__}")
    return sig, constexprs


def plan_on_cpu(module, model, q, k, v):
    """model's launch plan for q, k, v built on the CPU (its device check bypassed)."""
    check = module.supported
    module.supported = lambda *a: True
    try:
        return model._plan(q, k, v)
    finally:
        module.supported = check


def compile_model(module, model, q, k, v) -> dict:
    """model's kernel for q, k, v (CPU tensors of the shape to compile for), as a GPU launch
    would compile it, in a child process: {"ptx", "shared", "cubin_path"}.

    A child, because Triton's library functions (tl.max's combine ...) become interpreter
    functions when TRITON_INTERPRET is on at import, as the Triton tests in this process need,
    and the Gluon compiler then cannot use them."""
    launch = plan_on_cpu(module, model, q, k, v)
    descs = [
        module.TensorDescriptor(t, list(t.shape), list(t.stride()), block, layout)
        for t, block, layout in (
            (q, launch.q_block, launch.q_layout),
            (k, launch.kv_block, launch.kv_layout),
            (v, launch.kv_block, launch.kv_layout),
        )
    ]
    fn = module._attn_fwd_ws
    warps = module.CONFIG["num_warps"]
    sig, constexprs = _signature(fn, [*descs, torch.empty_like(q), *launch.tail, warps])
    job = {
        "source": module.__file__,
        "signature": sig,
        "constexprs": constexprs,
        "options": {"num_warps": warps, "maxnreg": module.LAUNCH_REGS},
    }
    with tempfile.TemporaryDirectory() as folder:
        spec = os.path.join(folder, "job.json")
        with open(spec, "w") as f:
            json.dump({**job, "out": folder}, f)
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        done = subprocess.run([sys.executable, __file__, spec], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"Gluon compile failed:\n{done.stderr[-4000:]}")
        with open(os.path.join(folder, "result.json")) as f:
            result = json.load(f)
        with open(os.path.join(folder, "kernel.ptx")) as f:
            result["ptx"] = f.read()
        with open(os.path.join(folder, "kernel.cubin"), "rb") as f:
            result["cubin"] = f.read()
    return result


def _compile_job(spec: str) -> None:
    """The child's side: import the generated module afresh and compile its kernel for sm_90."""
    import importlib.util

    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    with open(spec) as f:
        job = json.load(f)
    loaded = importlib.util.spec_from_file_location("gluon_job", job["source"])
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    source = GluonASTSource(module._attn_fwd_ws, job["signature"], job["constexprs"])
    kernel = triton.compile(source, target=GPUTarget(*HOPPER), options=job["options"])
    out = job["out"]
    with open(os.path.join(out, "kernel.ptx"), "w") as f:
        f.write(kernel.asm["ptx"])
    with open(os.path.join(out, "kernel.cubin"), "wb") as f:
        f.write(kernel.asm["cubin"])
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"shared": kernel.metadata.shared}, f)


def resource_usage(kernel: dict) -> str:
    """cuobjdump's register / stack / shared-memory line for the compiled kernel."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    path = f"/tmp/kernelscale-gluon-{os.getpid()}.cubin"
    with open(path, "wb") as f:
        f.write(kernel["cubin"])
    try:
        out = subprocess.run([tool, "-res-usage", path], capture_output=True, text=True, check=False).stdout
    finally:
        os.unlink(path)
    return " ".join(line.strip() for line in out.splitlines() if "REG:" in line)


if __name__ == "__main__":
    _compile_job(sys.argv[1])
