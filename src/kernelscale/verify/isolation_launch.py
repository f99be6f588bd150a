"""The last step before the candidate's program runs, executed inside its sandbox.

Run as `python -I -S isolation_launch.py SPEC_JSON -- ARGV...` (standard library only, no site,
so nothing the candidate can write is imported here). In order it: makes the mounts the
`unshare` mechanism needs (bubblewrap makes its own), sets the resource limits, gives up the
user id (to `nobody` when started as root) or, where that is impossible, every capability, sets
no-new-privileges, and finally execs ARGV. `--report` (exec'd as ARGV by the host's probe) prints
what the sandboxed process ended up as: how the host checks a mechanism before trusting it.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
LAST_CAPABILITY = 63

RLIMITS = {
    "core": resource.RLIMIT_CORE,
    "open_files": resource.RLIMIT_NOFILE,
    "file_bytes": resource.RLIMIT_FSIZE,
    "processes": resource.RLIMIT_NPROC,
    "memory_bytes": resource.RLIMIT_AS,
}


def _prctl(*args: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(*[ctypes.c_ulong(a) for a in args])


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# Flags a remount must repeat (inside a user namespace, dropping a locked one is refused).
KEPT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": 1024,
    "nodiratime": 2048,
    "relatime": 1 << 21,
    "strictatime": 1 << 24,
}


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    enc = lambda text: text.encode() if text is not None else None  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, flags to keep) for every mount, parents before children."""
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # "\040" is a space
            flags = sum(KEPT_FLAGS.get(option, 0) for option in fields[5].split(","))
            found.append((point, flags))
    return found


def make_mounts(spec: dict) -> None:
    """The `unshare` mechanism: private tmpfs on /tmp and /dev/shm, the writable directories
    bound back on top (held open first: the tmpfs hides them), every other mount read-only."""
    binds = [(path, 0) for path in spec["writable"]] + [
        (path, MS_RDONLY) for path in spec.get("readable", [])
    ]
    holders = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path, _ in binds]
    os.umask(0o022)  # the mount points made below must be enterable by `nobody`
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for folder in spec.get("hide", []):  # folders `nobody` cannot enter: only what is bound back
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    fresh = {"/tmp": spec["tmp_bytes"], "/dev/shm": spec["shm_bytes"]}
    for target, size in fresh.items():
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for (path, read_only), fd in zip(binds, holders):
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        if read_only:
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        os.close(fd)
    writable = set(fresh) | set(spec["writable"])
    for point, flags in _mount_points():
        if point in writable or point == "/proc" or point.startswith("/proc/"):
            continue
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:
            pass  # a mount hidden under another one; the root check below is what counts
    if not os.statvfs("/").f_flag & os.ST_RDONLY:
        raise OSError("the root filesystem is still writable")


def set_limits(limits: dict) -> None:
    for name, value in limits.items():
        if value is None:
            continue
        kind = RLIMITS[name]
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def drop_privileges(uid: int | None, gid: int | None) -> None:
    """To `uid` when given (clears every capability), else keep the uid and lose the capabilities
    across the coming exec (no-root securebits and an empty bounding set)."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    else:
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        for cap in range(LAST_CAPABILITY + 1):
            _prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails harmlessly without CAP_SETPCAP
        _prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0)
    _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _status_field(name: str) -> str:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def report() -> None:
    """The probe's second stage, exec'd after the drop: proves Python starts as the sandbox user
    and can write its working directory."""
    with open("probe-ok", "w") as marker:
        marker.write("ok")
    print(
        json.dumps(
            {
                "uid": os.getuid(),
                "pid": os.getpid(),
                "cap_eff": _status_field("CapEff"),
                "no_new_privs": _status_field("NoNewPrivs"),
            }
        )
    )


def main() -> None:
    if sys.argv[1] == "--report":
        report()
        return
    spec = json.loads(sys.argv[1])
    if spec.get("mounts"):
        make_mounts(spec)
    set_limits(spec["limits"])
    drop_privileges(spec.get("uid"), spec.get("gid"))
    if spec.get("chdir"):
        os.chdir(spec["chdir"])
    try:
        os.setsid()  # its own process group: kill(0, …) inside must not reach bwrap/unshare outside
    except OSError:
        pass  # already a session leader (the plain mechanism)
    argv = sys.argv[3:]
    os.execvpe(argv[0], argv, os.environ)


if __name__ == "__main__":
    main()
