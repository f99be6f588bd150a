"""The oracle starts isolated, and a hostile candidate run through the real verifier cannot
outlive its attempt or take the oracle down (checked from the test's side)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from kernelscale.verify import isolation
from kernelscale.verify.pool import oracle_command, oracle_env
from sandbox_helpers import processes_with

PLANTED = "open({marker!r}, 'a').write(__name__ + '\\n')\nraise SystemExit('planted module imported')\n"
TESTS = Path(__file__).parent


def test_modules_planted_in_the_oracle_cwd_are_never_imported(tmp_path):
    workdir = tempfile.mkdtemp(prefix="kernelscale-oracle-test-")
    marker = tmp_path / "imported"
    try:
        # Where a candidate could write: the oracle's working directory, and PYTHONPATH too.
        for name in ("torch", "redis", "z3", "numpy", "kernelscale"):
            (Path(workdir) / f"{name}.py").write_text(PLANTED.format(marker=str(marker)))
        env = oracle_env(workdir, None)
        env["PYTHONPATH"] = workdir
        proc = subprocess.Popen(
            oracle_command("cpu"),
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        hello, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert "hello" in json.loads(hello.splitlines()[0])
        assert not marker.exists(), marker.read_text()
        private = Path(workdir) / "private"
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert stat.S_IMODE(Path(workdir).stat().st_mode) == 0o711
        for key in ("HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "XDG_CACHE_HOME"):
            assert env[key].startswith(str(private)), key
    finally:
        subprocess.run(["rm", "-rf", workdir])


HOSTILE_INIT = """
import ctypes, os, signal
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scaled_exp_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.exp(x) * 2.0 + y, mask=mask)


def _escape():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            argv = (ctypes.c_char_p * 5)(b"/bin/sh", b"-c", b"sleep 30", b"{token}", None)
            ctypes.CDLL(None).execv(b"/bin/sh", argv)
        os._exit(0)
    os.wait()
    ppid = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("PPid")][0])
    for pid in {{ppid, 1}} | {{int(p) for p in os.listdir("/proc") if p.isdigit()}}:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class ModelNew(nn.Module):
    def __init__(self, *args):
        super().__init__()
        _escape()

    def forward(self, x, y):
        out = torch.empty_like(x)
        n = x.numel()
        scaled_exp_kernel[(triton.cdiv(n, 1024),)](x.contiguous(), y.contiguous(), out, n, BLOCK=1024)
        return out
"""


def test_hostile_candidate_leaves_no_process_and_the_oracle_alive(cpu_pool, scaled_exp):
    layers = isolation.build(isolation.probe(), ["true"], [], isolation.SandboxLimits(), {}).report.layers
    if "pid-namespace" not in layers:
        pytest.skip(
            "no PID namespace on this machine: a setsid grandchild could outlive the attempt "
            "and a kill-everything candidate would reach the host"
        )
    token = f"ks-hostile-{uuid.uuid4().hex}"
    oracles = [w.pid for w in cpu_pool.pool.workers]
    verdict = cpu_pool.verify(scaled_exp, HOSTILE_INIT.format(token=token), screen=False)
    assert "retried" not in verdict.reason, verdict.headline()
    assert cpu_pool.pool.replacements == 0 and cpu_pool.pool.retries == 0
    assert [w.pid for w in cpu_pool.pool.workers] == oracles
    for pid in oracles:
        os.kill(pid, 0)  # still alive
    assert processes_with(token) == []
    honest = cpu_pool.verify(scaled_exp, (TESTS / "problems" / "good_scaled_exp.py").read_text())
    assert honest.status == "correct", honest.headline()


def test_oracle_whose_pool_went_away_exits_quietly(scaled_exp):
    """The pool's process ended (an error, a closed terminal) while an attempt was being verified:
    the oracle finds nobody to answer and leaves without a traceback on the user's terminal."""
    workdir = tempfile.mkdtemp(prefix="kernelscale-oracle-test-")
    try:
        proc = subprocess.Popen(
            oracle_command("cpu"),
            cwd=workdir,
            env=oracle_env(workdir, None),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert "hello" in json.loads(proc.stdout.readline())
        proc.stdout.close()  # the pool is gone before the verdict is written
        code = (TESTS / "problems" / "good_scaled_exp.py").read_text()
        request = {"id": 1, "problem": scaled_exp.to_json(), "code": code, "options": {}}
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=300) == 0, err[-2000:]
        assert "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]
    finally:
        subprocess.run(["rm", "-rf", workdir])
