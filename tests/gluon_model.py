"""A plain-torch model of the Gluon subset the generated Hopper kernel uses, to run it on the CPU.

Gluon kernels do not run under Triton's interpreter. This model runs the generated module's own
kernel functions as Python: tensors are torch tensors, layouts are ignored, shared memory is
torch storage, and each program's partitions (gl.warp_specialize) run as threads that meet only
through modelled mbarriers. What it checks is the kernel's logic: the online softmax, the
pipeline order, the ring's slots and parities, the masks and the score code. A wait on a barrier
that never completes is a deadlock and fails the run.

Asynchronous wgmma is modelled at its worst: the product is computed when it is waited for,
reading shared memory then, so a slot handed back to the loader before its wgmma was waited for
would show up as a wrong result. Waiting for a result that is still outstanding raises.
"""

from __future__ import annotations

import sys
import threading
import types

import torch

WAIT_TIMEOUT_S = 20.0


class Ptr:
    """A pointer (tensor) into a flat torch tensor: base plus element offsets."""

    def __init__(self, base: torch.Tensor, offset=0):
        self.base, self.offset = base, offset

    def __add__(self, other):
        return Ptr(self.base, self.offset + other)

    __radd__ = __add__


def _t(x, dtype=None):
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(dtype)
    if dtype is None:
        dtype = (
            torch.float32 if isinstance(x, float) else (torch.bool if isinstance(x, bool) else torch.int64)
        )
    return torch.tensor(x, dtype=dtype)


def _load(ptr, mask=None, other=0):
    offset = _t(ptr.offset).long()
    if mask is None:
        return ptr.base[offset]
    mask = torch.broadcast_to(_t(mask, torch.bool), offset.shape)
    out = ptr.base[torch.where(mask, offset, 0)]
    return torch.where(mask, out, torch.tensor(other, dtype=out.dtype))


def _store(ptr, value, mask=None):
    offset = _t(ptr.offset).long()
    value = torch.broadcast_to(_t(value), offset.shape).to(ptr.base.dtype)
    if mask is not None:
        mask = torch.broadcast_to(_t(mask, torch.bool), offset.shape)
        offset, value = offset[mask], value[mask]
    ptr.base[offset.reshape(-1)] = value.reshape(-1)


def _inline_asm(asm, constraints, args, dtype, is_pure, pack):
    if asm.startswith("tanh.approx.f32"):
        return torch.tanh(_t(args[0]).float())
    raise NotImplementedError(asm)


class _State(threading.local):
    pass


PROGRAM = {"ids": (0, 0, 0), "grid": (1, 1, 1)}
MMA = _State()  # per thread (partition): its outstanding asynchronous wgmma, oldest first


def _layout(*args, **kwargs):
    return None


class _NVMMASharedLayout:
    def __init__(self, *args, **kwargs):
        pass

    @staticmethod
    def get_default_for(block, dtype):
        return _NVMMASharedLayout()


class _MBarrierLayout:
    pass


class Smem:
    """Shared memory: a torch tensor (a view of the allocation)."""

    def __init__(self, data: torch.Tensor):
        self.data = data
        self.type = types.SimpleNamespace(shape=list(data.shape))

    def index(self, i):
        return Smem(self.data[int(i)])

    def reshape(self, shape):
        return Smem(self.data.reshape(shape))

    def permute(self, order):
        return Smem(self.data.permute(order))

    def load(self, layout=None):
        return self.data.clone()


class Bar:
    """One mbarrier: `count` arrivals and the expected bytes complete a phase."""

    lock = threading.Condition()

    def __init__(self):
        self.count = self.pending = 1
        self.tx = 0
        self.phase = 0  # phases completed so far

    def _settle(self):
        if self.pending <= 0 and self.tx == 0:
            self.phase += 1
            self.pending = self.count
            Bar.lock.notify_all()


class Bars:
    def __init__(self, n):
        self.bars = [Bar() for _ in range(n)]

    def index(self, i):
        return self.bars[int(i)]


def _bar(b):
    return b.bars[0] if isinstance(b, Bars) else b


def _allocate(dtype, shape, layout=None):
    if isinstance(layout, _MBarrierLayout):
        return Bars(shape[0])
    return Smem(torch.full(list(shape), float("nan")).to(dtype))  # NaN: reading unwritten slots shows


def _mb_init(bar, count):
    b = _bar(bar)
    b.count = b.pending = count


def _mb_expect(bar, nbytes, pred=True):
    b = _bar(bar)
    with Bar.lock:
        b.tx += nbytes
        b.pending -= 1
        b._settle()


def _mb_arrive(bar, count=1, pred=True):
    if not pred:
        return
    b = _bar(bar)
    with Bar.lock:
        b.pending -= count
        b._settle()


def _mb_wait(bar, phase, *args, **kwargs):
    b = _bar(bar)
    with Bar.lock:  # parity P has completed once the phase count's parity differs from P
        if not Bar.lock.wait_for(lambda: (b.phase & 1) != int(phase), timeout=WAIT_TIMEOUT_S):
            raise RuntimeError("mbarrier wait never completed: deadlock")


class TensorDescriptor:
    def __init__(self, base, shape, strides, block_shape, layout, padding="zero"):
        self.base, self.shape, self.strides = base, list(shape), list(strides)
        self.block_shape, self.layout = list(block_shape), layout
        self.dtype = base.dtype
        self.block_type = types.SimpleNamespace(
            shape=list(block_shape), nbytes=base.element_size() * int(torch.tensor(block_shape).prod())
        )


def _tma_load(desc, coord, bar, dest, pred=True):
    """The tile at `coord`, zeros past the tensor's edges, then the bytes counted on `bar`."""
    tile = torch.zeros(desc.block_shape, dtype=desc.dtype)
    src = desc.base
    idx = tuple(slice(int(c), int(c) + n) for c, n in zip(coord, desc.block_shape))
    part = src[idx]
    tile[tuple(slice(0, n) for n in part.shape)] = part
    dest.data.copy_(tile)
    b = _bar(bar)
    with Bar.lock:
        b.tx -= desc.block_type.nbytes
        b._settle()


def _operand(x):
    return x.data.float() if isinstance(x, Smem) else _t(x).float()


class _Token:
    def __init__(self, compute):
        self.compute, self.value = compute, None


def _wgmma(a, b, acc, *, use_acc=True, precision=None, max_num_imprecise_acc=None, is_async=False):
    start = _t(acc).float() if use_acc is True or bool(use_acc) else 0.0

    def compute():  # reads shared memory now: late, as the hardware may
        return _operand(a) @ _operand(b) + start

    if not is_async:
        return compute()
    token = _Token(compute)
    MMA.pending = getattr(MMA, "pending", []) + [token]
    return token


def _wgmma_wait(num_outstanding=0, deps=None):
    pending = getattr(MMA, "pending", [])
    while len(pending) > num_outstanding:
        token = pending.pop(0)
        token.value = token.compute()
    MMA.pending = pending
    values = []
    for dep in deps or ():
        if isinstance(dep, _Token):
            if dep.value is None:
                raise RuntimeError("a wgmma result read while it is still outstanding")
            values.append(dep.value)
        else:
            values.append(dep)
    return values[0] if len(values) == 1 else tuple(values)


def _warp_specialize(functions_and_args, worker_num_warps, worker_num_regs):
    errors = []

    def run(fn, args):
        try:
            fn(*args)
        except BaseException as exc:  # reported by the launching thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=fa, daemon=True) for fa in functions_and_args[1:]]
    for w in workers:
        w.start()
    default = functions_and_args[0]
    run(*default)
    for w in workers:
        w.join(WAIT_TIMEOUT_S)
        if w.is_alive():
            errors.append(RuntimeError("a worker partition never finished: deadlock"))
    if errors:
        raise errors[0]


def _pointer(t: torch.Tensor) -> Ptr:
    """A tensor argument as the kernel sees it: the address of its first element in its storage."""
    n = t.untyped_storage().nbytes() // t.element_size()
    flat = torch.empty(0, dtype=t.dtype).set_(t.untyped_storage(), 0, (n,), (1,))
    return Ptr(flat, t.storage_offset())


class _Kernel:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __getitem__(self, grid):
        def launch(*args, num_warps=4, maxnreg=None, **options):
            args = [_pointer(a) if isinstance(a, torch.Tensor) else a for a in args]
            names = self.fn.__code__.co_varnames[: self.fn.__code__.co_argcount]
            if "num_warps" in names:
                args.append(num_warps)
            grid3 = (*grid, 1, 1)[:3]
            PROGRAM["grid"] = grid3
            for z in range(grid3[2]):
                for y in range(grid3[1]):
                    for x in range(grid3[0]):
                        PROGRAM["ids"] = (x, y, z)
                        self.fn(*args)

        return launch


def _jit(fn=None, **kwargs):
    if fn is None:
        return _jit
    return _Kernel(fn)


def _copy(name: str) -> types.ModuleType:
    """A new module with the real one's names (and package path, so that its submodules still
    import), for the model to override some of them."""
    import importlib

    module = types.ModuleType(name)
    module.__dict__.update(
        {k: v for k, v in vars(importlib.import_module(name)).items() if not k.startswith("__")}
    )
    real = importlib.import_module(name)
    if hasattr(real, "__path__"):
        module.__path__ = real.__path__
    return module


def _modules() -> dict[str, types.ModuleType]:
    gl = types.ModuleType("triton.experimental.gluon.language")
    f32 = torch.float32
    gl.__dict__.update(
        constexpr=lambda x=None: x,
        static_range=range,
        program_id=lambda axis: PROGRAM["ids"][axis],
        num_programs=lambda axis: PROGRAM["grid"][axis],
        arange=lambda start, end, layout=None: torch.arange(start, end, dtype=torch.int32),
        full=lambda shape, value, dtype, layout=None: torch.full(list(shape), value, dtype=dtype),
        zeros=lambda shape, dtype, layout=None: torch.zeros(list(shape), dtype=dtype),
        load=_load,
        store=_store,
        where=lambda c, a, b: torch.where(_t(c, torch.bool), _t(a), _t(b)),
        maximum=lambda a, b: torch.maximum(_t(a), _t(b)),
        minimum=lambda a, b: torch.minimum(_t(a), _t(b)),
        max=lambda x, axis: torch.amax(x, dim=axis),
        sum=lambda x, axis: torch.sum(x, dim=axis),
        cast=lambda x, dtype: _t(x).to(dtype),
        convert_layout=lambda x, layout: x,
        inline_asm_elementwise=_inline_asm,
        allocate_shared_memory=_allocate,
        warp_specialize=_warp_specialize,
        NVMMADistributedLayout=_layout,
        SliceLayout=_layout,
        DotOperandLayout=_layout,
        BlockedLayout=_layout,
        NVMMASharedLayout=_NVMMASharedLayout,
        float32=f32,
        float16=torch.float16,
        bfloat16=torch.bfloat16,
        int32=torch.int32,
        int64=torch.int64,
        uint8=torch.uint8,
    )
    for name in ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "floor", "ceil", "sin", "cos", "abs"):
        gl.__dict__[name] = (
            lambda fn: lambda x: fn(_t(x).float() if not _t(x).is_floating_point() else _t(x))
        )(getattr(torch, name))
    mbarrier = types.SimpleNamespace(
        MBarrierLayout=_MBarrierLayout, init=_mb_init, expect=_mb_expect, arrive=_mb_arrive, wait=_mb_wait
    )
    tma = types.SimpleNamespace(async_load=_tma_load)
    hopper_lang = types.ModuleType("triton.experimental.gluon.language.nvidia.hopper")
    hopper_lang.__dict__.update(
        mbarrier=mbarrier, tma=tma, warpgroup_mma=_wgmma, warpgroup_mma_wait=_wgmma_wait
    )
    hopper = _copy("triton.experimental.gluon.nvidia.hopper")  # Triton's runtime reads it too
    hopper.TensorDescriptor = TensorDescriptor
    gluon = _copy("triton.experimental.gluon")
    gluon.jit = _jit
    gluon.language = gl
    return {
        "triton.experimental.gluon": gluon,
        "triton.experimental.gluon.language": gl,
        "triton.experimental.gluon.language.nvidia.hopper": hopper_lang,
        "triton.experimental.gluon.nvidia.hopper": hopper,
    }


def install(monkeypatch) -> None:
    """Gluon's modules replaced by the model while the test runs (a generated module imported
    then binds the model)."""
    import triton.experimental as experimental

    modules = _modules()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(experimental, "gluon", modules["triton.experimental.gluon"], raising=False)


def allow_cpu(module) -> None:
    """The module's device check, which admits only Hopper GPUs, relaxed to the model's CPU; and
    its bf16 rounding helper (integer bit tricks the model's tensors lack) as torch's own."""
    module.supported = lambda q, k, v: q.dtype in (torch.bfloat16, torch.float16) and q.shape[-1] in (64, 128)
    module._round_bf16 = _Kernel(lambda x: _t(x).to(torch.bfloat16).float())
