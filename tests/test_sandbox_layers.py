"""The candidate's OS sandbox, checked from outside with a planted child program.

Each test starts `sandbox.Child` on a tiny hostile program (tests/sandbox_helpers.py) under each
mechanism this machine allows and asserts, from the test's side, that the layer held.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from kernelscale.verify import isolation
from kernelscale.verify.isolation import SandboxLimits
from sandbox_helpers import ask, processes_with, require, require_layer, start_child

MECHANISMS = ["bwrap", "unshare", "plain"]


@pytest.fixture(params=MECHANISMS)
def mechanism(request, monkeypatch):
    return require(request.param, monkeypatch)


@pytest.fixture
def child_factory(tmp_path):
    started = []

    def start(name="work", **kwargs):
        child = start_child(tmp_path / name, **kwargs)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


def test_reported_layers_are_the_ones_in_force(mechanism, child_factory):
    """Every layer the report names is checked against what the child itself sees."""
    limits = SandboxLimits(shm_bytes=64 << 20, tmp_bytes=64 << 20)
    child = child_factory(limits=limits)
    report = child.isolation
    assert report.mechanism == mechanism.name
    assert report.layers == mechanism.layers() and set(report.missing).isdisjoint(report.layers)
    seen = ask(child, "facts")
    host_ns = {k: os.readlink(f"/proc/self/ns/{k}") for k in ("pid", "net", "ipc", "mnt")}
    namespaces = {
        "pid-namespace": "pid",
        "network-namespace": "net",
        "ipc-namespace": "ipc",
        "mount-namespace": "mnt",
    }
    for layer, kind in namespaces.items():
        assert (seen["ns"][kind] != host_ns[kind]) == (layer in report.layers), layer
    if "pid-namespace" in report.layers:
        assert seen["pid"] <= 2
    assert seen["root_ro"] == ("read-only-root" in report.layers)
    if "private-shm" in report.layers:
        assert seen["shm_bytes"] == 64 << 20
    assert int(seen["cap_eff"], 16) == 0
    assert seen["uid"] == (isolation.NOBODY if "unprivileged-uid" in report.layers else os.getuid())
    assert report.uid == seen["uid"]
    assert report.to_json()["layers"] == list(report.layers)


def test_caches_point_inside_the_sandbox(mechanism, child_factory, monkeypatch):
    monkeypatch.setenv("TRITON_CACHE_DIR", "/host/triton/cache")  # the oracle's: must not leak in
    child = child_factory()
    env = ask(child, "facts")["env"]
    inside = ("/tmp/",) if "private-tmp" in child.isolation.layers else (str(child.log_path.parent) + "/",)
    for key in ("TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "XDG_CACHE_HOME", "TMPDIR", "HOME"):
        assert (env[key] + "/").startswith(inside) or env[key] + "/" == str(child.log_path.parent) + "/", key


def test_setsid_grandchild_dies_with_the_attempt(mechanism, child_factory):
    child = child_factory()
    require_layer(child, "pid-namespace")
    token = f"ks-orphan-{uuid.uuid4().hex}"
    marker = child.log_path.parent / "escaped"  # writable for the candidate, so only death stops it
    assert ask(child, "orphan", sleep=4, marker=str(marker), token=token)["forked"]
    # The reply can come before the grandchild has exec'd under its token (a loaded CI machine).
    seen_by = time.monotonic() + 3.0
    while not processes_with(token) and time.monotonic() < seen_by:
        time.sleep(0.05)
    assert processes_with(token), "the planted grandchild should be running before the kill"
    child.kill()
    assert processes_with(token) == []
    time.sleep(4.5)  # past the moment it would have written
    assert not marker.exists()


def test_udp_never_reaches_the_host(mechanism, child_factory):
    child = child_factory()
    require_layer(child, "network-namespace")
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    reply = ask(child, "udp", port=listener.getsockname()[1])
    with pytest.raises(socket.timeout):
        listener.recvfrom(100)  # sent (bwrap has its own loopback) or refused, it never arrives
    assert len(reply["errors"]) <= 2
    listener.close()


def test_filling_shm_and_tmp_harms_neither_host_nor_next_candidate(mechanism, child_factory):
    limits = SandboxLimits(shm_bytes=32 << 20, tmp_bytes=32 << 20)
    greedy = child_factory("greedy", limits=limits)
    require_layer(greedy, "private-shm")
    require_layer(greedy, "private-tmp")
    host_free = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    written = ask(greedy, "fill", cap=256 << 20)["written"]
    assert 0 < written["/dev/shm"] <= 32 << 20 and 0 < written["/tmp"] <= 32 << 20
    after = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    assert host_free - after < 16 << 20  # the host's /dev/shm did not take the 32 MiB
    honest = child_factory("honest", limits=limits)  # while the greedy one is still alive
    assert ask(honest, "use_tmp")["ok"]
    greedy.kill()


def test_killing_every_visible_pid_spares_the_host(mechanism, child_factory):
    child = child_factory()
    require_layer(child, "pid-namespace")
    bystander = subprocess.Popen(["sleep", "60"])  # stands for the oracle and the CLI
    try:
        reply = ask(child, "kill_all")
        assert os.getpid() not in reply["hit"] and bystander.pid not in reply["hit"]
        time.sleep(0.2)
        assert bystander.poll() is None
        os.kill(os.getpid(), 0)
        assert child.proc.poll() is None, "bwrap/unshare outside the namespace is out of reach too"
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_compiler_named_cc_linked_to_a_shell_gains_nothing(mechanism, child_factory):
    child = child_factory()
    require_layer(child, "read-only-root")
    # Outside /tmp (which is private inside) and open to everyone: only the read-only root stops it.
    scratch = tempfile.mkdtemp(prefix=".sandbox-scratch-", dir=os.path.dirname(__file__))
    os.chmod(scratch, 0o777)
    outside = os.path.join(scratch, "planted-by-cc")
    try:
        reply = ask(child, "run_cc", outside=outside)
        assert not os.path.exists(outside), reply
    finally:
        shutil.rmtree(scratch)
    assert "Read-only file system" in reply["err"] or "Permission denied" in reply["err"], reply
    if "unprivileged-uid" in child.isolation.layers:
        assert reply["out"].split()[0] == str(isolation.NOBODY)


def test_audit_hook_refuses_a_compiler_planted_in_a_writable_folder(tmp_path, monkeypatch):
    from kernelscale.verify.guards import _audit

    (tmp_path / "cc").symlink_to("/bin/sh")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PermissionError, match="can write"):
        _audit("subprocess.Popen", ("./cc", ["./cc"], None, None))
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(PermissionError, match="can write"):
        _audit("subprocess.Popen", (None, ["cc", "-c", "x.c"], None, None))


def test_forcing_an_unknown_mechanism_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(isolation.FORCE_ENV, "docker")
    monkeypatch.setattr(isolation, "_chosen", None)
    with pytest.raises(ValueError, match="expected one of"):
        isolation.probe()
