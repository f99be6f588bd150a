"""Install the CPU-only build of torch when this machine has no NVIDIA GPU.

A plain `pip install torch` on Linux resolves to the CUDA build, which pulls about twenty nvidia-*
packages (several GB) that a CPU-only machine never uses. PyTorch publishes CPU-only wheels on its
own index; this script installs the pinned torch from there, and falls back to the default index
(with one line saying so) when that index cannot be reached, so an offline mirror still works.
With a GPU it does nothing: `pip install -e .` then takes the CUDA build from the default index.

Usage: python tools/install_cpu_torch.py [--torch 2.13.0] [--python PATH] [--dry-run]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

TORCH_VERSION = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 10.0


def has_nvidia_gpu() -> bool:
    """True when nvidia-smi exists and lists at least one GPU (the driver is what CUDA torch needs)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def index_reachable(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when the index answers an HTTP request (any status below 500) within the timeout."""
    try:
        with urllib.request.urlopen(url + "/torch/", timeout=timeout_s) as reply:
            return reply.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False


def pip_command(python: str, version: str, cpu_index_ok: bool) -> list[str]:
    """The pip call that installs torch: from the CPU index when it answers, else the default one."""
    command = [python, "-m", "pip", "install", "-q", f"torch=={version}"]
    if cpu_index_ok:
        command += ["--index-url", CPU_INDEX]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", default=TORCH_VERSION, help="torch version to pin")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose pip installs it")
    parser.add_argument("--dry-run", action="store_true", help="print the pip command, run nothing")
    args = parser.parse_args(argv)
    if has_nvidia_gpu():
        print("NVIDIA GPU found: torch comes from the default index with CUDA")
        return 0
    cpu_index_ok = index_reachable(CPU_INDEX)
    if not cpu_index_ok:
        print(f"{CPU_INDEX} unreachable: installing torch from the default index (may pull the CUDA build)")
    command = pip_command(args.python, args.torch, cpu_index_ok)
    print("no GPU: " + " ".join(command))
    if args.dry_run:
        return 0
    returncode = subprocess.run(command).returncode
    if returncode != 0 and cpu_index_ok:
        # Reachable but unusable (a proxy that answers with errors, a partial mirror): try PyPI.
        print(f"installing from {CPU_INDEX} failed: installing torch from the default index instead")
        returncode = subprocess.run(pip_command(args.python, args.torch, cpu_index_ok=False)).returncode
    return returncode


if __name__ == "__main__":
    sys.exit(main())
