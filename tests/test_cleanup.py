"""A candidate's folder goes, whatever modes the candidate left on its subfolders."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kernelscale.verify.cleanup import remove_tree, sweep_stale

SOURCE = (
    Path(__file__).resolve().parent.parent / "src" / "kernelscale" / "verify" / "cleanup.py"
).read_text()
# What a candidate leaves: files in a subfolder it made read-only, another it made unsearchable.
LEAVE_LOCKED = """
import os, sys
base = sys.argv[1]
for name, mode in (("ro", 0o500), ("nox", 0o600)):
    os.makedirs(os.path.join(base, name, "deep"))
    for i in range(3):
        open(os.path.join(base, name, "deep", f"f{i}"), "w").write("x" * 100)
    open(os.path.join(base, name, "file"), "w").write("x")
    os.chmod(os.path.join(base, name), mode)
"""


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess:
    def drop():
        os.setgid(65534)
        os.setuid(65534)

    return subprocess.run(
        ["/usr/bin/python3", "-c", code, *args], preexec_fn=drop, capture_output=True, text=True, check=False
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="needs root to act as another user"
)
@pytest.mark.parametrize("remover", ["rmtree", "remove_tree"])
def test_locked_subfolders_are_removed_by_their_owner(remover):
    """Root ignores modes, so both sides run as an unprivileged user: the candidate's uid is the
    oracle's where the oracle is not root. Plain rmtree leaves the locked files; remove_tree not."""
    outer = Path(tempfile.mkdtemp(prefix="ks-cleanup-"))  # pytest's own folders are root's alone
    outer.chmod(0o755)
    os.chown(outer, 65534, 65534)  # the folder of attempt folders is the oracle's user's too
    base = outer / "attempt"
    base.mkdir()
    os.chown(base, 65534, 65534)
    try:
        _check_removal(base, remover)
    finally:
        remove_tree(outer)


def _check_removal(base: Path, remover: str) -> None:
    made = _as_nobody(LEAVE_LOCKED, str(base))
    assert made.returncode == 0, made.stderr
    if remover == "rmtree":
        code = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
    else:
        code = SOURCE + "\nimport sys\nprint(remove_tree(sys.argv[1]))"
    done = _as_nobody(code, str(base))
    assert done.returncode == 0, done.stderr
    if remover == "rmtree":
        # what the verifier did before: files left behind in both locked folders
        assert (base / "ro" / "file").exists() and (base / "nox" / "deep" / "f0").exists()
    else:
        assert done.stdout.strip() == "True" and not base.exists()


def test_remove_tree_takes_plain_folders_links_and_absent_paths(tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    (target / "keep").write_text("x")
    folder = tmp_path / "attempt"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f").write_text("x")
    (folder / "link").symlink_to(target)  # a link out of the folder: removed, not followed
    assert remove_tree(folder) and not folder.exists()
    assert (target / "keep").exists()
    assert remove_tree(tmp_path / "never-made")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def _dead_pid() -> int:
    """A pid that no process has now: a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_pools_folder_is_swept_and_a_live_ones_is_kept(tmp_path):
    dead = tmp_path / f"ks-oracle-{_dead_pid()}-abc"
    (dead / "ks-attempt-x").mkdir(parents=True)
    (dead / "ks-attempt-x" / "junk").write_bytes(b"x" * 1000)
    live = tmp_path / f"ks-oracle-{os.getpid()}-def"
    live.mkdir()
    unnamed = tmp_path / "ks-oracle-old_style"  # no pid in its name: nothing says it is stale
    unnamed.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(dead / "ks-attempt-x")], check=False
        ).returncode
        == 0
    )
    if mounted:  # as a killed pool leaves it: its attempt folder a tmpfs, with the candidate's file
        (dead / "ks-attempt-x" / "junk").write_bytes(b"x" * 1000)

    assert sweep_stale(str(tmp_path), "ks-oracle-") == 1

    assert not dead.exists() and live.is_dir() and unnamed.is_dir()
    with open("/proc/self/mountinfo") as info:
        assert str(dead) not in info.read()  # the tmpfs went with it
