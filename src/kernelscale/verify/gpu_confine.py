"""One GPU per sandbox: the device nodes a candidate needs for the GPU its oracle owns, no others.

On a machine with several GPUs every oracle owns one, but a sandbox that binds every
`/dev/nvidia*` lets a candidate run work on the others while its attempt lasts, slowing a
rival's attempt there. Under bubblewrap only the owned GPU's node is bound (with the control
nodes every CUDA process needs), the driver's per-GPU folders in `/proc/driver/nvidia/gpus` are
masked but that one, and the runner selects the GPU by UUID.

Which node is the owned GPU's is found, not assumed: the driver lists each GPU's PCI address
and device minor in `/proc/driver/nvidia/gpus/<address>/information`, and torch gives the PCI
address of the GPU this process uses. Then a sandboxed probe must see exactly that GPU, by UUID,
and run a kernel on it; if anything differs (an older driver, a container, no bubblewrap), the
sandbox binds every GPU as before and the verdict's isolation report says so.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

GPUS_DIR = "/proc/driver/nvidia/gpus"
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
PROBE = (
    "import json, torch\n"
    "x = torch.ones(4, device='cuda') * 2\n"
    "torch.cuda.synchronize()\n"
    "print(json.dumps({'count': torch.cuda.device_count(),"
    " 'uuid': str(torch.cuda.get_device_properties(0).uuid), 'sum': float(x.sum())}))\n"
)


@dataclass(frozen=True)
class GpuConfinement:
    """What a sandbox binds for one GPU, and how the process inside selects it."""

    nodes: tuple[str, ...]  # device nodes (and /dev/nvidia-caps) to bind
    proc_dir: str  # the GPU's folder in /proc/driver/nvidia/gpus, the only one left visible
    uuid: str  # CUDA_VISIBLE_DEVICES inside: "GPU-..."
    minor: int

    def describe(self) -> str:
        return f"one GPU: /dev/nvidia{self.minor} ({self.uuid})"


def minor_of(address: str, gpus_dir: str = GPUS_DIR) -> int | None:
    """The device minor of the GPU at PCI `address` (domain:bus:device.function, any case)."""
    wanted = address.lower()
    for folder in glob.glob(os.path.join(gpus_dir, "*")):
        if os.path.basename(folder).lower() != wanted:
            continue
        try:
            text = Path(folder, "information").read_text()
        except OSError:
            return None
        found = re.search(r"Device Minor:\s*(\d+)", text)
        return int(found.group(1)) if found else None
    return None


def pci_address(props) -> str | None:
    """The PCI address of a torch device's properties, as the driver's folder names spell it."""
    parts = [getattr(props, name, None) for name in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    if any(not isinstance(p, int) for p in parts):
        return None
    domain, bus, device = parts
    return f"{domain:04x}:{bus:02x}:{device:02x}.0"


def plan(props, gpus_dir: str = GPUS_DIR, dev: str = "/dev") -> GpuConfinement | None:
    """The confinement for the GPU with these torch properties, or None if it cannot be found."""
    address = pci_address(props)
    uuid = str(getattr(props, "uuid", "") or "")
    minor = minor_of(address, gpus_dir) if address else None
    if minor is None or not uuid:
        return None
    node = os.path.join(dev, f"nvidia{minor}")
    if not os.path.exists(node):
        return None
    controls = [n.replace("/dev", dev, 1) for n in CONTROL_NODES]
    caps = os.path.join(dev, "nvidia-caps")
    nodes = [node, *(n for n in controls if os.path.exists(n)), *([caps] if os.path.isdir(caps) else [])]
    uuid = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    return GpuConfinement(tuple(nodes), os.path.join(gpus_dir, address), uuid, minor)


def for_this_process(
    workdir: Path, gpus_dir: str = GPUS_DIR, dev: str = "/dev"
) -> tuple[GpuConfinement | None, str]:
    """(the confinement, a line for the report): None with the reason when there is nothing to
    hide (one GPU on the machine) or it cannot be had."""
    import torch

    from kernelscale.verify import isolation

    if len(glob.glob(os.path.join(gpus_dir, "*"))) <= 1:
        return None, "the machine's only GPU"
    mech = isolation.probe()
    if mech.name != "bwrap":
        return None, f"every GPU visible: binding one GPU needs bubblewrap (sandbox: {mech.name})"
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    confinement = plan(props, gpus_dir, dev)
    if confinement is None:
        return None, "every GPU visible: this GPU's device node was not found"
    why = _probe(mech, confinement, workdir)
    if why:
        return None, f"every GPU visible: a sandbox bound to one GPU failed its probe ({why})"
    return confinement, confinement.describe()


def _probe(mech, confinement: GpuConfinement, workdir: Path) -> str | None:
    """None when a sandboxed process bound to this GPU sees it alone and runs a kernel on it."""
    from kernelscale.verify import isolation
    from kernelscale.verify.sandbox import _package_root, sandbox_env

    with tempfile.TemporaryDirectory(prefix="gpu-probe-", dir=workdir) as folder:
        if mech.drop_uid:
            os.chown(folder, isolation.NOBODY, isolation.NOBODY)
        env = sandbox_env({"CUDA_VISIBLE_DEVICES": confinement.uuid}, home=folder)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH")) if p)
        program = [sys.executable, "-c", PROBE]
        launch = isolation.build(
            mech, program, [Path(folder)], isolation.SandboxLimits(), env, Path(folder), gpu=confinement
        )
        try:
            done = subprocess.run(
                launch.argv, env=env, capture_output=True, timeout=120, start_new_session=True
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{type(exc).__name__}: {str(exc)[:160]}"
    try:
        seen = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        errors = done.stderr.decode(errors="replace").strip().splitlines()
        return f"exit {done.returncode}: {errors[-1][:160] if errors else 'no output'}"
    if seen.get("count") != 1 or seen.get("uuid") not in (confinement.uuid, confinement.uuid[4:]):
        return f"it saw {seen.get('count')} GPU(s), {seen.get('uuid')}"
    return None if seen.get("sum") == 8.0 else "its kernel gave a wrong result"
