"""Attempt folders on a tmpfs of their own, capped in bytes and in files.

A candidate may write into its attempt folder (its working directory and HOME), which lives in
the host's /dev/shm, i.e. in memory. Each file is capped (RLIMIT_FSIZE) and the attempt is
timed, but the number of files was not: a candidate could fill the host's memory with them.
Where the oracle may mount (as root), each attempt folder is a tmpfs of its own, of
SCRATCH_MB plus the room its slabs need (set when they are made, before any candidate code
runs; slab.py reserves their pages then). What a candidate writes beyond that fails in the
candidate (ENOSPC); cleanup.py unmounts the folder before removing it. Elsewhere the folder is
a plain directory, as before (docs/verifier.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from kernelscale.verify.isolation_launch import MS_NODEV, MS_NOSUID, MS_REMOUNT, _mount

SCRATCH_MB = 1024  # the candidate's own room; KERNELSCALE_ATTEMPT_SCRATCH_MB sets another
FILES = 65536  # inodes: files and folders the candidate may make


def cap(folder: Path) -> bool:
    """Mount a capped tmpfs on `folder` (an empty folder just made); False where we cannot."""
    if os.geteuid() != 0:
        return False
    try:
        _mount("tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV, _options(0) + ",mode=0700")
    except OSError:
        return False
    return True


def make_room(folder: Path, slab_bytes: int) -> None:
    """Grow a capped folder to hold `slab_bytes` of slabs besides the scratch space. Best effort:
    where it fails, the slabs' own reservation (slab.py) reports what does not fit."""
    if os.path.ismount(folder):
        try:
            _mount(None, str(folder), None, MS_REMOUNT | MS_NOSUID | MS_NODEV, _options(slab_bytes))
        except OSError:
            pass


def _options(slab_bytes: int) -> str:
    scratch = int(os.environ.get("KERNELSCALE_ATTEMPT_SCRATCH_MB", SCRATCH_MB)) * 2**20
    return f"size={scratch + slab_bytes},nr_inodes={FILES}"
