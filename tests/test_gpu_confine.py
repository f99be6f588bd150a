"""One GPU per sandbox (verify/gpu_confine.py): the owned GPU's device node is found from the
driver's listing, only it is bound, and a failed probe leaves every GPU bound, with the reason.

The probe itself needs a GPU; here it runs for real under bubblewrap on the CPU, where it must
fail (no CUDA) and so prove the fallback and that bubblewrap accepts the confined command line.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kernelscale.verify import gpu_confine, isolation
from kernelscale.verify.isolation import Mechanism, SandboxLimits

PROPS = SimpleNamespace(
    pci_domain_id=0, pci_bus_id=0x18, pci_device_id=0, uuid="58e2b7a1-0000-1111-2222-333344445555"
)


def _driver_tree(root: Path) -> tuple[str, str]:
    """A fake /proc/driver/nvidia/gpus with two GPUs and a fake /dev with their nodes."""
    gpus, dev = root / "gpus", root / "dev"
    for address, minor in (("0000:18:00.0", 3), ("0000:2a:00.0", 0)):
        (gpus / address).mkdir(parents=True)
        (gpus / address / "information").write_text(
            f"Model: H200\nDevice Minor: {minor}\nBus Location: {address}\n"
        )
    dev.mkdir()
    for name in ("nvidia0", "nvidia3", "nvidiactl", "nvidia-uvm"):
        (dev / name).write_text("")
    (dev / "nvidia-caps").mkdir()
    return str(gpus), str(dev)


def test_the_owned_gpus_node_is_found_from_the_driver_listing(tmp_path):
    gpus, dev = _driver_tree(tmp_path)
    assert gpu_confine.pci_address(PROPS) == "0000:18:00.0"
    assert (
        gpu_confine.minor_of("0000:18:00.0", gpus) == 3 and gpu_confine.minor_of("0000:99:00.0", gpus) is None
    )
    plan = gpu_confine.plan(PROPS, gpus, dev)
    assert plan.minor == 3 and plan.uuid == "GPU-" + PROPS.uuid
    assert plan.nodes == (f"{dev}/nvidia3", f"{dev}/nvidiactl", f"{dev}/nvidia-uvm", f"{dev}/nvidia-caps")
    assert plan.proc_dir == f"{gpus}/0000:18:00.0"


def test_no_plan_without_a_pci_address_a_listing_or_a_node(tmp_path):
    gpus, dev = _driver_tree(tmp_path)
    assert gpu_confine.plan(SimpleNamespace(uuid="x"), gpus, dev) is None  # an older torch
    assert gpu_confine.plan(PROPS, str(tmp_path / "none"), dev) is None
    (Path(dev) / "nvidia3").unlink()
    assert gpu_confine.plan(PROPS, gpus, dev) is None


def test_a_confined_sandbox_binds_that_gpu_only(tmp_path):
    gpus, dev = _driver_tree(tmp_path)
    plan = gpu_confine.plan(PROPS, gpus, dev)
    argv = isolation._bwrap_argv(Mechanism("bwrap", False), [str(tmp_path)], SandboxLimits(), {}, plan)
    bound = [argv[i + 1] for i, a in enumerate(argv) if a == "--dev-bind"]
    assert bound == list(plan.nodes) and f"{dev}/nvidia0" not in argv
    tmpfs = [argv[i + 1] for i, a in enumerate(argv) if a == "--tmpfs"]
    assert gpus in tmpfs and plan.proc_dir in argv  # the other GPUs' driver folders are hidden
    unconfined = isolation._bwrap_argv(Mechanism("bwrap", False), [str(tmp_path)], SandboxLimits(), {})
    assert gpus not in unconfined


def test_the_cpu_oracle_and_a_one_gpu_machine_confine_nothing(tmp_path):
    from kernelscale.verify.oracle import Oracle

    assert Oracle("cpu", tmp_path).gpu_confinement() == (None, "")
    gpus, dev = _driver_tree(tmp_path)
    shutil.rmtree(Path(gpus) / "0000:2a:00.0")
    assert gpu_confine.for_this_process(tmp_path, gpus, dev) == (None, "the machine's only GPU")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")
def test_a_failed_probe_leaves_every_gpu_bound_and_says_why(tmp_path, monkeypatch):
    gpus, dev = _driver_tree(tmp_path)
    if isolation.probe().name != "bwrap":
        pytest.skip(f"bubblewrap does not start here: {isolation.probe().note}")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: PROPS)
    workdir = tmp_path / "oracle"
    workdir.mkdir(mode=0o711)
    confinement, note = gpu_confine.for_this_process(workdir, gpus, dev)
    assert confinement is None
    assert note.startswith("every GPU visible: a sandbox bound to one GPU failed its probe (exit ")
    assert "CUDA" in note, note  # bubblewrap took the confined command line; Python ran, CUDA did not
