"""Where one call's exchange between the oracle and the runner spends its time, step by step.

Every verified call moves an input set from the oracle to the runner and the outputs back through
two slabs in /dev/shm (src/kernelscale/verify/slab.py). This times each step of that path in one
process on a GPU, with the input and output sizes of `attention/causal` at B=4, H=16, S=4096,
D=128 in bf16 (three 64 MiB inputs, one 64 MiB output), and a few alternatives for the oracle's
side of the copies: more I/O threads, and a mapping of the slab registered with the driver.

    python benchmarks/exchange_profile.py --out $OUT/exchange-profile.json
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from kernelscale.verify import masking, slab
from kernelscale.verify.inputs import fingerprint

SHAPE = (4, 16, 4096, 128)


def timed(fn, repeats: int = 7) -> float:
    """Median milliseconds of `fn()` (synchronized after each)."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


def oracle_steps(folder: Path, inputs: list, outputs: list) -> dict:
    """The oracle's side as it is today: mask, write, fingerprint; read, digest."""
    key = masking.derive(1, 2)
    insl = slab.OracleSlab(folder / "in.slab", slab.slab_bytes(inputs))
    outsl = slab.OracleSlab(folder / "out.slab", slab.slab_bytes(outputs) * 2, writable_by_others=True)
    runner_in = slab.MappedSlab(folder / "in.slab", insl.capacity, writable=False)
    runner_out = slab.MappedSlab(folder / "out.slab", outsl.capacity, writable=True)
    pinned = [runner_in.pin(), runner_out.pin()]
    masked = masking.masked_copy(inputs, key)
    descriptors = insl.write(masked)
    shipped = runner_out.write(outputs)
    flat = masked[0].view(-1).view(torch.uint8)
    host = insl._staging(0, flat.numel())  # noqa: SLF001 (the host buffer the write above used)
    view = memoryview(host.numpy())
    result = {
        "pinned_by_runner": pinned,
        "mask_ms": timed(lambda: masking.masked_copy(inputs, key)),
        "write_ms": timed(lambda: insl.write(masked)),
        "write_d2h_one_input_ms": timed(lambda: host.copy_(flat)),
        "write_pwrite_one_input_ms": timed(lambda: slab._in_chunks(insl._write_all, view, 0)),  # noqa: SLF001
        "fingerprint_ms": timed(lambda: fingerprint(masked)),
        "runner_stage_read_ms": timed(lambda: runner_in.read(descriptors, "cuda")),
        "runner_ship_write_ms": timed(lambda: runner_out.write(outputs)),
        "read_ms": timed(lambda: outsl.read(shipped, "cuda")),
        "torch_digest_ms": timed(lambda: masking.torch_digests(outputs, key)),
        "triton_digest_ms": timed(lambda: masking.digests(outputs, key)),
        "io_threads": slab.IO_THREADS,
    }
    for threads in (1, 8, 16):
        slab.IO_THREADS, slab._io_pool = threads, None  # noqa: SLF001
        result[f"write_pwrite_one_input_{threads}_threads_ms"] = timed(
            lambda: slab._in_chunks(insl._write_all, view, 0)  # noqa: SLF001
        )
    for s in (insl, outsl):
        s.close()
    return result


def mapped_alternative(folder: Path, inputs: list) -> dict:
    """The oracle mapping its own slab (registered with the driver) and copying the device
    tensors straight into it: one copy instead of device -> staging -> file."""
    nbytes = slab.slab_bytes(inputs)
    path = folder / "mapped.slab"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, nbytes)
    os.posix_fallocate(fd, 0, nbytes)
    region = mmap.mmap(fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    mapped = torch.frombuffer(region, dtype=torch.uint8)
    registered = slab._register_host(mapped.data_ptr(), nbytes, read_only=False)  # noqa: SLF001
    flats = [x.reshape(-1).view(torch.uint8) for x in inputs]

    def copy_all():
        offset = 0
        for f in flats:
            mapped[offset : offset + f.numel()].copy_(f)
            offset += f.numel()

    result = {"registered": registered, "d2h_into_mapping_all_inputs_ms": timed(copy_all)}
    back = torch.empty(flats[0].numel(), dtype=torch.uint8, device="cuda")
    result["h2d_from_mapping_one_ms"] = timed(lambda: back.copy_(mapped[: back.numel()]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    inputs = [torch.randn(SHAPE, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    outputs = [torch.randn(SHAPE, device="cuda", dtype=torch.bfloat16)]
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=base) as folder:
        report = {
            "device": torch.cuda.get_device_name(),
            "cpus": os.cpu_count(),
            "input_mib": sum(x.numel() * 2 for x in inputs) / 2**20,
            "output_mib": outputs[0].numel() * 2 / 2**20,
        }
        report |= oracle_steps(Path(folder), inputs, outputs)
        try:
            report |= mapped_alternative(Path(folder), inputs)
        except Exception as exc:  # noqa: BLE001 (an alternative that fails is a finding, not a crash)
            report["mapped_alternative_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    print(json.dumps(report, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
