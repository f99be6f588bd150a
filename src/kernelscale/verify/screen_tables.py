"""Name tables for the static screen: what host code may import and call."""

ALLOWED_IMPORTS = frozenset(
    {
        "torch",
        "triton",
        "math",
        "numpy",
        "typing",
        "functools",
        "itertools",
        "operator",
        "dataclasses",
        "collections",
        "enum",
        "abc",
        "__future__",
    }
)

# torch.<name>(...) calls allowed in forward-reachable host code: allocation, metadata, dtypes.
ALLOWED_TORCH_CALLS = frozenset(
    {
        "empty",
        "empty_like",
        "empty_strided",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "arange",
        "tensor",
        "as_tensor",
        "is_tensor",
        "is_floating_point",
        "numel",
        "device",
        "dtype",
        "Size",
        "finfo",
        "iinfo",
        "get_default_dtype",
        "promote_types",
        "result_type",
        "no_grad",
        "inference_mode",
        "enable_grad",
        "set_grad_enabled",
    }
)

# Tensor methods that compute (called in forward-reachable host code they are a torch fallback).
COMPUTE_METHODS = frozenset(
    {
        "matmul",
        "mm",
        "bmm",
        "addmm",
        "addbmm",
        "baddbmm",
        "einsum",
        "mv",
        "dot",
        "outer",
        "kron",
        "softmax",
        "log_softmax",
        "sum",
        "nansum",
        "mean",
        "prod",
        "std",
        "var",
        "max",
        "min",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "norm",
        "logsumexp",
        "exp",
        "exp_",
        "exp2",
        "expm1",
        "log",
        "log1p",
        "log2",
        "sqrt",
        "rsqrt",
        "tanh",
        "sigmoid",
        "relu",
        "relu_",
        "gelu",
        "silu",
        "erf",
        "pow",
        "square",
        "abs",
        "neg",
        "reciprocal",
        "cumsum",
        "cumprod",
        "cummax",
        "sort",
        "topk",
        "conv1d",
        "conv2d",
        "conv3d",
        "linear",
        "layer_norm",
        "rms_norm",
        "group_norm",
        "batch_norm",
        "dropout",
        "where",
        "clamp",
        "clamp_",
        "clip",
        "add",
        "add_",
        "sub",
        "sub_",
        "mul",
        "mul_",
        "div",
        "div_",
        "addcmul",
        "addcdiv",
        "lerp",
        "triu",
        "tril",
        "masked_fill",
        "masked_fill_",
        "scatter",
        "scatter_add",
        "index_add",
        "gather",
        "index_select",
        "softplus",
        "hardtanh",
        "leaky_relu",
        "elu",
        "mish",
        "logaddexp",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "scaled_dot_product_attention",
        "flex_attention",
        "sin",
        "cos",
        "floor",
        "ceil",
        "round",
        "sign",
        "any",
        "all",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "cross",
        "diff",
        "trace",
        "diag",
        "histc",
        "bincount",
        "unique",
    }
)

# Modules whose attributes a candidate must never assign (monkey-patching timers, ops, checks),
# wherever they appear in the assigned chain: `torch.x = ...`, and also
# `flash_attn.cute.interface.torch.x = ...`, which reaches the same torch through a library.
PATCHED_ROOTS = frozenset(
    {"torch", "triton", "time", "os", "sys", "numpy", "builtins", "math", "tl", "flash_attn", "cutlass"}
)

# Modules a candidate may not import, and so may not reach as an attribute of a module it may
# import either (`dataclasses.inspect`, `interface.time`): every module holds the ones it imported.
# Names with a common innocent use as an attribute (`x.numpy()`, `tl.math`, `x.copy()`) are left to
# the import rule and the assignment rule.
REACHED_MODULES = frozenset(
    {
        "inspect",
        "gc",
        "ctypes",
        "importlib",
        "threading",
        "multiprocessing",
        "asyncio",
        "signal",
        "socket",
        "shutil",
        "pickle",
        "marshal",
        "types",
        "runpy",
        "tempfile",
        "pathlib",
        "time",
        "torch",
        "triton",
        "flash_attn",
        "cutlass",
        "atexit",
        "faulthandler",
        "linecache",
        "traceback",
        "weakref",
        "ctypeslib",  # numpy's door to ctypes: load_library runs any shared object
    }
)

# Names that are escape hatches wherever they appear.
FORBIDDEN_CALLS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "open",
        "globals",
        "vars",
        "locals",
        "breakpoint",
        "input",
        "exit",
        "quit",
        "memoryview",
        "__builtins__",
    }
)

# Callables that reach attributes by a string, so that no forbidden name appears in the source:
# `operator.attrgetter("sys.modules")(torch)`, `attrgetter("__setattr__")(type)(cls, name, f)`,
# `methodcaller("__setattr__", ...)`. Refused however they are named: called, imported, aliased.
STRING_ACCESSORS = frozenset({"attrgetter", "methodcaller"})

# Keyword arguments that make a load unpickle (np.load, torch.load): a pickle runs any callable
# it names, none of which appears in the source.
UNPICKLING_KEYWORDS = frozenset({("allow_pickle", True), ("weights_only", False)})

# Attribute names that reach process state, other modules or the class machinery.
FORBIDDEN_ATTRS = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "builtins",
        "system",
        "popen",
        "__class__",
        "__bases__",
        "__base__",
        "__subclasses__",
        "__mro__",
        "__builtins__",
        "__import__",
        "__dict__",
        "__getattribute__",
        "__self__",
        "__loader__",
        "__spec__",
        "__reduce__",
        "__reduce_ex__",
        "__setattr__",
    }
)

STREAM_CALLS = frozenset(
    {
        "torch.cuda.Stream",
        "torch.cuda.stream",
        "torch.cuda.set_stream",
        "torch.Stream",
        "torch.cuda.ExternalStream",
        "torch.cuda.StreamContext",
        "torch.cuda.graph",
        "torch.cuda.CUDAGraph",
        "torch.cuda.make_graphed_callables",
        "torch.stream",
    }
)

# Kernel libraries a candidate may import besides Triton: CuTe DSL (a kernel language, like
# Triton) and FlashAttention-4's CuTe kernels. Only these modules, and only these names from them.
LIBRARY_IMPORTS = frozenset(
    {
        "cutlass",
        "cutlass.cute",
        "flash_attn.cute",
        "flash_attn.cute.interface",
        "flash_attn.cute.block_sparsity",
    }
)
# FA4's forward that takes a score_mod, a mask_mod and an output buffer is private by name
# (FlexAttention's FLASH backend calls it too); it is the one private name a candidate may import.
PRIVATE_ENTRY_POINTS = frozenset({("flash_attn.cute.interface", "_flash_attn_fwd")})
# Calling one of these from forward launches a kernel (FA4's), as a @triton.jit launch does.
LIBRARY_KERNELS = frozenset(
    {
        "flash_attn.cute.interface._flash_attn_fwd",
        "flash_attn.cute.interface.flash_attn_func",
        "flash_attn.cute.flash_attn_func",
    }
)
# CuTe DSL's host-side doors out of a kernel language: loading libraries, foreign calls, exported
# binaries, the DSL's own internals.
LIBRARY_FORBIDDEN = (
    "cutlass.base_dsl",
    "cutlass.cutlass_dsl",
    "cutlass.cute.runtime",
    "cutlass.cute.ffi",
    "cutlass.cute.export",
    "cutlass.cute.experimental",
    "cutlass.utils",
    "cutlass.torch",
)

# What each rule refuses, in the words a proposer and a user read.
RULES: dict[str, str] = {
    "no_model_new": "the module must define `class ModelNew(nn.Module)`",
    "subclasses_model": "ModelNew must not subclass or use the reference `Model`",
    "try_except": "no try/except: a kernel must not fall back to other code when it fails",
    "torch_fallback": "forward must not call high-level torch compute (torch.*, F.*, nn layers, torch.ops, "
    "SDPA/flex, tensor math methods, `@`); only allocation, views and your kernels",
    "torch_compile": "no torch.compile / torch.jit: write the kernel yourself",
    "threads": "no threads, processes or asyncio",
    "streams": "no new CUDA streams, stream switches or CUDA graphs",
    "introspection": "no gc, inspect, frame walking, sys.modules, globals()/vars()",
    "monkey_patch": "no assignment to attributes of torch, triton, the kernel libraries, time, os, sys, "
    "numpy or builtins, however they are reached",
    "tensor_subclass": "no tensor subclasses, __torch_function__/__torch_dispatch__ or dispatch modes",
    "no_kernel": "the forward must launch a kernel of its own (@triton.jit, or CUDA via load_inline)",
    "forbidden_import": "imports are limited to torch, triton, math, numpy, the standard helpers and the "
    "kernel libraries cutlass.cute and flash_attn.cute; no module reached through another's attributes",
    "forbidden_call": "no eval/exec/compile/__import__/getattr/setattr/open, operator.attrgetter/methodcaller "
    "and similar escape hatches",
    "private_access": "no access to private or system attributes (`_name`, os/sys/environ, dunders)",
    "env_access": "no access to environment variables",
    # Checked while the candidate runs (the runner and the oracle), not by the screen:
    "timer_mismatch": "reported kernel times must fit inside the host time measured around them",
    "late_outputs": "the outputs must be final when the call says it is done",
}
