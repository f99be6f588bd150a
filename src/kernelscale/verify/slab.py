"""Input sets and outputs between the oracle and the runner, through shared memory.

Every call moves a whole input set to the candidate and its outputs back; on a GPU that is
hundreds of MB per call. Serialising each one to a file (a pickle, a write, a read, a parse)
cost ~1 s per call on an H200 host for the largest problems, most of the verifier's time. Here
each direction has one *slab*: a file in the attempt folder (in /dev/shm where there is one),
sized once per attempt. A tensor travels as its storage's bytes plus a small JSON descriptor
(offset, dtype, shape, strides, storage offset) in the request or reply: the runner copies
between the device and its mapping of the slab, the oracle between the device and one reusable
host buffer that it reads and writes the slab through. Whole
storages travel, as `torch.save` would write them, so an output that is a view into a larger
buffer still arrives as one.

The oracle creates both slabs and only ever reads and writes them with plain file I/O (a runner
that truncates a mapped file would otherwise crash the reader with SIGBUS); the runner maps
them, the input slab read-only. The output slab is the one file the runner may write.
Descriptors from the runner are checked before any byte is read: a bad one is the candidate's
error, never the oracle's crash.
"""

from __future__ import annotations

import math
import mmap
import os
import stat
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

ALIGN = 256  # every storage starts on a boundary that suits any element type
SCALARS = (bool, int, float, str, type(None))


class SlabError(ValueError):
    """A value that cannot travel (too large for the slab, an unsupported type, a bad descriptor)."""


_INTEGERS = frozenset(
    {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32, torch.uint64}
)


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise SlabError(f"unknown dtype {name!r}")
    # Values move as bytes: a dtype no value copy takes (quantized, sub-byte) must not pass.
    if not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool or dtype in _INTEGERS):
        raise SlabError(f"a {dtype} value cannot travel: not a plain numeric dtype")
    return dtype


class _Slab:
    """Layout shared by both sides: `write` lays out a list of values from the start of the slab,
    `read` rebuilds them from their descriptors. Subclasses move the bytes."""

    path: Path
    capacity: int

    def write(self, values: list[Any]) -> list[dict]:
        """Copy every value in; the descriptors say where each one lies."""
        descriptors, offset = [], 0
        for i, value in enumerate(values):
            if isinstance(value, torch.Tensor):
                value = value.detach()
                storage = value.untyped_storage().nbytes()
                if storage % value.element_size():
                    raise SlabError(f"value {i}: its storage is not a whole number of {value.dtype} elements")
                if offset + storage > self.capacity:
                    raise SlabError(
                        f"value {i} keeps {storage} bytes of storage ({value.numel() * value.element_size()} "
                        f"of its own elements); only {self.capacity - offset} of {self.capacity} are left"
                    )
                self._put(offset, _whole_storage(value))
                descriptors.append(_describe(value, offset, storage))
                offset += math.ceil(storage / ALIGN) * ALIGN
            elif _plain(value):  # travels in the descriptor itself
                descriptors.append({"value": value, "tuple": isinstance(value, tuple)})
            else:
                raise SlabError(
                    f"value {i} is a {type(value).__name__} holding more than numbers: values travel as "
                    "tensors, or as numbers, strings and lists or dicts of them"
                )
        return descriptors

    def read(self, descriptors: Any, device: torch.device | str | None = None) -> list[Any]:
        """Fresh values (the slab's bytes copied out) on `device`, rebuilt with their strides."""
        if not isinstance(descriptors, list):
            raise SlabError("descriptors must be a list")
        # The writer lays storages out one after another, so together they fit the slab; more is
        # a forged list (the same bytes described a thousand times), which would make the reader
        # allocate a thousand slabs' worth before anything is compared.
        claims = [d.get("storage_bytes", 0) if isinstance(d, dict) else 0 for d in descriptors]
        if not all(type(c) is int and c >= 0 for c in claims):
            raise SlabError("a descriptor's storage_bytes is not a count of bytes")
        if sum(claims) > self.capacity:
            raise SlabError(f"the descriptors claim {sum(claims)} bytes of a {self.capacity}-byte slab")
        # A value's own size is its shape's, not its storage's: four bytes described with shape
        # (2**40,) and stride 0 is a view of a terabyte, which the reader's digest, comparison or
        # copy would then materialize (`describes_a_broadcast_output`). Together the values
        # must fit the slab as well; an honest output that is a broadcast view of the reference's
        # shape still does, and is refused by the comparison (not dense) with its reason.
        values, logical = [], 0
        for desc in descriptors:
            value = self._read_one(desc, device)
            if isinstance(value, torch.Tensor):
                logical += value.numel() * value.element_size()
                if logical > self.capacity:
                    raise SlabError(
                        f"value {len(values)} has shape {list(value.shape)}: together the values "
                        f"describe {logical} bytes, more than the {self.capacity}-byte slab holds"
                    )
            values.append(value)
        return values

    def describe(self) -> dict:
        """What the other process needs to map it."""
        return {"path": str(self.path), "capacity": self.capacity}

    def _read_one(self, desc: Any, device) -> Any:
        if not isinstance(desc, dict):
            raise SlabError(f"bad descriptor {desc!r:.80}")
        if "value" in desc:
            if not _plain(desc["value"]):
                raise SlabError("a value descriptor must hold numbers, strings, lists or dicts of them")
            return tuple(desc["value"]) if desc.get("tuple") else desc["value"]
        try:
            dtype = _dtype(str(desc["dtype"]))
            offset, storage = int(desc["offset"]), int(desc["storage_bytes"])
            shape, stride = [int(s) for s in desc["shape"]], [int(s) for s in desc["stride"]]
            start = int(desc["storage_offset"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # int(Infinity) overflows
            raise SlabError(f"bad descriptor {desc!r:.120}: {exc}") from None
        if offset < 0 or offset % ALIGN or storage < 0 or offset + storage > self.capacity:
            raise SlabError(
                f"descriptor outside the slab: offset {offset}, {storage} bytes of {self.capacity}"
            )
        # The descriptor is the other process's word: whatever torch refuses in it (a quantized
        # or sub-byte dtype, strides outside the storage) is that process's error, never ours.
        try:
            size = torch.empty((), dtype=dtype).element_size()
            if storage % size:
                raise SlabError(f"{storage} bytes of storage is not a whole number of {dtype} elements")
            # Bytes, never values: a copy between bool tensors turns every nonzero byte into 1,
            # so an output the runner digested with other bytes (a fresh `torch.empty`) would
            # no longer match its commitment here.
            raw = torch.empty(storage, dtype=torch.uint8, device=device)
            flat = raw.copy_(self._get(offset, storage)).view(dtype)
        except (RuntimeError, TypeError, ValueError) as exc:
            if isinstance(exc, SlabError):
                raise
            raise SlabError(f"a {dtype} value cannot travel: {str(exc)[:120]}") from None
        try:
            return flat.as_strided(shape, stride, start)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise SlabError(f"shape {shape}, strides {stride} do not fit their storage: {exc}") from None

    def _put(self, offset: int, flat: torch.Tensor) -> None:
        raise NotImplementedError

    def _get(self, offset: int, nbytes: int) -> torch.Tensor:
        raise NotImplementedError


class OracleSlab(_Slab):
    """The oracle's side: plain reads and writes on a file it created, never a mapping, so a
    runner that truncates the file gets a short read here (its own error), not a SIGBUS that
    would take the oracle down."""

    def __init__(self, path: Path, nbytes: int, writable_by_others: bool = False):
        """A new slab of at least `nbytes`; others may read it, and write it only when
        `writable_by_others` (the output slab, which the runner fills)."""
        self.path = Path(path)
        self.capacity = max(ALIGN, math.ceil(nbytes / ALIGN) * ALIGN)
        self.fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        os.ftruncate(self.fd, self.capacity)
        # Every page reserved now, before the candidate runs: a sparse slab in /dev/shm needs new
        # pages at each call's write, and a candidate that fills /dev/shm with files (bounded per
        # file, not in total) would make that write fail in the oracle, an error of its own.
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(self.fd, 0, self.capacity)
        os.fchmod(self.fd, 0o666 if writable_by_others else 0o644)
        self._host: torch.Tensor | None = None
        self._unwritten: list[tuple[int, int]] = []  # (offset, bytes) staged, not yet in the file
        self.writes = 0  # input sets written so far: each one replaces the one before
        self._flushing: Future | None = None  # a background flush still writing

    def write(self, values: list[Any], deferred: bool = False) -> list[dict]:
        """As `_Slab.write`; with `deferred`, the values only reach the host buffer (one device
        copy each, done when this returns) and `flush` writes them into the file later, while
        the GPU is busy with something else (the file write is the slow part: ~5 GB/s, one
        writer at a time per file in tmpfs)."""
        self.wait()  # the host buffer is shared: an earlier set's write must be over first
        self.writes += 1
        descriptors = super().write(values)
        if not deferred:
            self.flush()
        return descriptors

    def flush(self, background: bool = False) -> None:
        """Write what `write(..., deferred=True)` staged into the file; with `background`, in a
        thread of its own (os.pwrite releases the GIL), done by the next `flush`, `wait`,
        `write` or read here."""
        self.wait()
        pending, self._unwritten = self._unwritten, []
        if pending and background:
            self._flushing = _writer().submit(self._write_ranges, pending)
        elif pending:
            self._write_ranges(pending)

    def wait(self) -> None:
        """A background flush finished (an error in it is raised here)."""
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            flushing.result()

    def _write_ranges(self, ranges: list[tuple[int, int]]) -> None:
        for offset, nbytes in ranges:  # one writer: tmpfs takes one write per file at a time
            self._write_all(memoryview(self._staging(offset, nbytes).numpy()), offset)

    def close(self) -> None:
        try:
            self.wait()
        except OSError:
            pass  # closing anyway: the attempt is over
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self._host = None

    def _staging(self, offset: int, nbytes: int) -> torch.Tensor:
        """A host buffer the size of the slab, made once and reused by every call (pinned where
        CUDA is present, so device copies run at full speed and no call pays page faults)."""
        if self._host is None:
            self._host = torch.empty(self.capacity, dtype=torch.uint8, pin_memory=torch.cuda.is_available())
        return self._host[offset : offset + nbytes]

    def _put(self, offset: int, flat: torch.Tensor) -> None:
        nbytes = flat.numel() * flat.element_size()
        self._staging(offset, nbytes).copy_(_as_bytes(flat))  # a device tensor comes to the host once
        self._unwritten.append((offset, nbytes))

    def _get(self, offset: int, nbytes: int) -> torch.Tensor:
        self.flush()  # the host buffer is shared: what is staged goes to the file first
        staging = self._staging(offset, nbytes)
        got = sum(_in_chunks(self._read_some, memoryview(staging.numpy()), offset)) if nbytes else 0
        if got != nbytes:
            raise SlabError(f"{self.path.name} holds {got} of the {nbytes} bytes described (truncated?)")
        return staging

    def _write_all(self, view: memoryview, offset: int) -> int:
        total = view.nbytes
        while view.nbytes:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written
        return total

    def _read_some(self, view: memoryview, offset: int) -> int:
        return os.preadv(self.fd, [view], offset)


# One thread copies 5-10 GB/s between a host buffer and /dev/shm; a timed call moves its input
# set and outputs (up to ~500 MB on a GPU) this way. Reads run in a few threads (os.preadv
# releases the GIL). Writes into one tmpfs file take its lock one at a time, so threads gain
# nothing there (H200 host, 64 MiB: 12.8 ms in one thread, 13.6 in four, 13.4 in eight): they
# run in one, and the timed loop hides them behind the reference (`flush(background=True)`).
IO_CHUNK = 32 << 20
IO_THREADS = max(1, min(4, os.cpu_count() or 1))
_io_pool: ThreadPoolExecutor | None = None
_flush_thread: ThreadPoolExecutor | None = None


def _writer() -> ThreadPoolExecutor:
    """The one thread background flushes run in."""
    global _flush_thread
    if _flush_thread is None:
        _flush_thread = ThreadPoolExecutor(1, thread_name_prefix="slab-flush")
    return _flush_thread


def _in_chunks(io, view: memoryview, offset: int) -> list[int]:
    """`io(part, offset)` over consecutive chunks of `view`; each call's result, in order."""
    global _io_pool
    if view.nbytes <= IO_CHUNK or IO_THREADS == 1:
        return [io(view, offset)]
    if _io_pool is None:
        _io_pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="slab-io")
    starts = range(0, view.nbytes, IO_CHUNK)
    return list(_io_pool.map(lambda start: io(view[start : start + IO_CHUNK], offset + start), starts))


class MappedSlab(_Slab):
    """The runner's side: the oracle's slab mapped into memory, so a tensor is one copy between
    the device and the shared pages. The input slab is mapped read-only."""

    def __init__(self, path: Path, capacity: int, writable: bool = True):
        """Map an existing slab: a regular file (never a link) of at least `capacity` bytes."""
        self.path, self.capacity, self.writable = Path(path), int(capacity), writable
        fd = os.open(self.path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size < self.capacity or self.capacity <= 0:
                raise SlabError(f"{self.path.name} is not a slab of {self.capacity} bytes")
            protection = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            self._map = mmap.mmap(fd, self.capacity, mmap.MAP_SHARED, protection)
        finally:
            os.close(fd)
        with warnings.catch_warnings():  # a read-only mapping: torch warns that it is not writable
            warnings.simplefilter("ignore")
            self.bytes = torch.frombuffer(self._map, dtype=torch.uint8)

    def pin(self) -> bool:
        """Register the mapping with the CUDA driver (page-locked), so copies between the device
        and the slab are direct DMA. Pageable copies of a 256 MB tensor cost ~40 ms each way on
        an H200 host; a slab is mapped once per attempt and used by every call. Best effort:
        False (and plain copies) where the driver refuses."""
        return _register_host(self.bytes.data_ptr(), self.capacity, read_only=not self.writable)

    def _put(self, offset: int, flat: torch.Tensor) -> None:
        if not self.writable:
            raise SlabError(f"{self.path.name} is mapped read-only here")
        nbytes = flat.numel() * flat.element_size()
        self.bytes[offset : offset + nbytes].copy_(_as_bytes(flat))

    def _get(self, offset: int, nbytes: int) -> torch.Tensor:
        return self.bytes[offset : offset + nbytes]


# cuMemHostRegister flags (CUDA driver API): a read-only mapping must say so, or pinning fails.
_REGISTER_PORTABLE, _REGISTER_READ_ONLY = 0x01, 0x08


def _register_host(pointer: int, nbytes: int, read_only: bool) -> bool:
    """Page-lock host memory through the driver API. Not the runtime's cudaHostRegister: a
    refusal there stays as the runtime's "last error" and would surface in the next unrelated
    kernel launch check."""
    import ctypes

    try:
        driver = ctypes.CDLL("libcuda.so.1")
        context = ctypes.c_void_p()
        if driver.cuCtxGetCurrent(ctypes.byref(context)) != 0 or not context.value:
            return False
        flags = _REGISTER_PORTABLE | (_REGISTER_READ_ONLY if read_only else 0)
        register = driver.cuMemHostRegister_v2
        register.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
        return register(ctypes.c_void_p(pointer), ctypes.c_size_t(nbytes), ctypes.c_uint(flags)) == 0
    except (OSError, AttributeError):
        return False


def _plain(value: Any, depth: int = 0) -> bool:
    """Numbers, strings, None, and (not too deeply) nested lists, tuples and str-keyed dicts of them."""
    if isinstance(value, SCALARS):
        return True
    if depth >= 4:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _as_bytes(flat: torch.Tensor) -> torch.Tensor:
    """A flat tensor's bytes, as they lie (a value copy would canonicalize bools to 0 and 1)."""
    return flat.view(torch.uint8) if flat.numel() else flat.new_empty(0, dtype=torch.uint8)


def _whole_storage(t: torch.Tensor) -> torch.Tensor:
    """The tensor's entire storage as a flat tensor of its dtype (what a view hides included)."""
    return t.as_strided((t.untyped_storage().nbytes() // t.element_size(),), (1,), 0)


def _describe(t: torch.Tensor, offset: int, storage: int) -> dict:
    return {
        "offset": offset,
        "storage_bytes": storage,
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "stride": list(t.stride()),
        "storage_offset": t.storage_offset(),
    }


def slab_bytes(values: list[Any], slack: float = 1.0) -> int:
    """Room for these values' storages, aligned, times `slack`, plus one MB for small surprises."""
    total = sum(
        math.ceil(v.untyped_storage().nbytes() / ALIGN) * ALIGN for v in values if isinstance(v, torch.Tensor)
    )
    return int(total * slack) + 2**20
