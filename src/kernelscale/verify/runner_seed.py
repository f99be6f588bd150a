"""The runner seed: our own kernels' compiled binaries, carried from one runner to the next.

Every runner compiles, in a Triton cache of its own that no candidate shares, the kernels the
verifier itself runs in it (warm_kernel.py: the masking kernels, a one-element kernel) and
Triton's driver helpers. On an H200 that took 1.8–3.0 s of each runner's 4–5 s warm-up, and a
solve's first attempt waits for it. These binaries are the same for every runner on a machine
(same torch, triton, GPU and driver), so the first runner that finishes its warm-up copies its
cache out (before any candidate code exists in it), the oracle keeps that copy in the user's
cache folder, and later runners, in this run and later ones, start from a copy of it.

Nothing secret is in it: the kernels take their keys as arguments, and a candidate that reads or
rewrites its own copy changes nothing but its own process, which the protocol never trusts
(masking.py). Only the oracle writes the kept copy, and only from a runner that has run nothing
but our code. Standard library only: the runner imports this before torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

COMPLETE = ".complete"  # written last: a copy without it is never used
SEED_IN_WORKDIR = "triton-seed"  # where the oracle puts a runner's copy, in its working folder
EXPORT_IN_WORKDIR = "triton-warm"  # where a runner puts its warmed cache for the oracle


def kept_seed(environment: dict) -> Path:
    """The kept copy for this machine's torch, triton, GPU and driver."""
    key = {k: environment.get(k) for k in ("torch", "triton", "name", "cuda", "driver", "python")}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    home = os.environ.get("KERNELSCALE_RUNNER_SEED")  # set by the pool: the user's cache folder
    if home:
        return Path(home) / digest
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kernelscale" / "runner-seed" / digest


def copy_tree(src: Path, dst: Path) -> int:
    """Files copied from src into dst (created), keeping the layout; 0 when src is missing."""
    count = 0
    for path in sorted(Path(src).rglob("*")) if Path(src).is_dir() else []:
        if path.is_file() and not path.is_symlink():
            target = Path(dst) / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            count += 1
    return count


def into_cache(seed_dir: str | None) -> int:
    """In the runner: copy the seed into this process's Triton cache; files copied."""
    cache = os.environ.get("TRITON_CACHE_DIR")
    return copy_tree(Path(seed_dir), Path(cache)) if seed_dir and cache else 0


def out_of_cache(export_dir: str | None) -> int:
    """In the runner, after its warm-up: copy this process's Triton cache out; files copied."""
    cache = os.environ.get("TRITON_CACHE_DIR")
    return copy_tree(Path(cache), Path(export_dir)) if export_dir and cache else 0


def hand_to_runner(seed: Path, workdir: Path) -> Path | None:
    """Copy a complete kept seed into a new runner's working folder; its path there, or None."""
    if not (seed / COMPLETE).is_file():
        return None
    dst = Path(workdir) / SEED_IN_WORKDIR
    copy_tree(seed, dst)
    (dst / COMPLETE).unlink(missing_ok=True)
    return dst


def keep(export: Path, seed: Path) -> bool:
    """Keep a runner's exported cache as the seed, once: copied whole, then marked complete."""
    if (seed / COMPLETE).is_file() or not Path(export).is_dir():
        return False
    partial = seed.with_name(seed.name + f".{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    if copy_tree(export, partial) == 0:
        shutil.rmtree(partial, ignore_errors=True)
        return False
    (partial / COMPLETE).write_text("")
    seed.parent.mkdir(parents=True, exist_ok=True)
    if seed.exists():  # a copy left incomplete by an oracle that died while keeping it
        shutil.rmtree(seed, ignore_errors=True)
    try:
        partial.rename(seed)
    except OSError:  # another oracle kept one first
        shutil.rmtree(partial, ignore_errors=True)
        return False
    return True
