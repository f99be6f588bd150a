"""Removing a folder a candidate could write into, whatever it did to the folder's modes.

Where the oracle does not run as root, the candidate's process has the oracle's own uid (mapped
through a user namespace), so it can make a subfolder of its attempt folder read-only or
unsearchable. `shutil.rmtree(..., ignore_errors=True)` then leaves that subfolder's files behind,
in the host's /dev/shm where the attempt folders live, and every such attempt adds to them. The
folders are ours (same uid): their modes are given back before removal.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import stat

MNT_DETACH = 2


def _unlock(path: str) -> None:
    """Owner read, write and search on every folder under `path` (links are not followed)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o700)
    except OSError:
        return
    for root, dirs, _files in os.walk(path, topdown=True):
        for name in dirs:  # before os.walk descends into it, so that it can
            folder = os.path.join(root, name)
            try:
                if not os.path.islink(folder):
                    os.chmod(folder, 0o700)
            except OSError:
                pass


def remove_tree(path: str | os.PathLike) -> bool:
    """Remove `path` and everything under it; True when it is gone."""
    path = os.fspath(path)
    _detach(path)  # a capped attempt folder (folder_cap.py): its tmpfs goes first, whole
    for _ in range(3):  # a second pass for what a walk racing the candidate's exit missed
        if not os.path.lexists(path):
            return True
        _unlock(path)
        shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


def _detach(path: str) -> None:
    """Lazily unmount the attempt folders' own tmpfs at or under `path` (an attempt folder, or
    the folder of an oracle's attempt folders); their memory goes once nothing holds them."""
    top = os.path.realpath(path)
    # mountinfo read here, not through isolation_launch._mount_points: this module stands alone
    # (its source also runs by itself, as another user: tests/test_cleanup.py)
    try:
        with open("/proc/self/mountinfo") as info:
            points = [line.split()[4].encode().decode("unicode_escape") for line in info]
    except OSError:
        return
    mine = [p for p in points if (p == top or p.startswith(top + "/")) and "/ks-attempt-" in p]
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(set(mine), key=len, reverse=True):
        libc.umount2(point.encode(), MNT_DETACH)


def sweep_stale(parent: str, prefix: str) -> int:
    """Remove the folders `<parent>/<prefix><pid>-*` of ours whose process `pid` is gone: what
    a pool killed outright (SIGKILL to its whole group, a lost machine session) left in
    /dev/shm, i.e. in the host's memory, with its attempt folders' tmpfs still mounted. A live
    pid, another user's folder or a name without a pid is left alone. Returns how many went."""
    try:
        names = os.listdir(parent)
    except OSError:
        return 0
    gone = 0
    for name in names:
        pid = name[len(prefix) :].split("-", 1)[0]
        if not (name.startswith(prefix) and pid.isdigit()):
            continue
        path = os.path.join(parent, name)
        try:
            if os.lstat(path).st_uid != os.geteuid() or _alive(int(pid)):
                continue
        except OSError:
            continue
        gone += remove_tree(path)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
