"""The runner seed (verify/runner_seed.py): our own compiled kernels carried from one runner's
warm-up to the next runner's cache. Asserted from outside the runner: the files it exports to
its working folder, and the kept copy the oracle writes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kernelscale.verify import runner_seed
from kernelscale.verify.candidate import CandidateProcess, attempt_dir
from kernelscale.verify.cleanup import remove_tree
from kernelscale.verify.oracle import Oracle
from kernelscale.verify.spare import Spares

ENV = {"torch": "2.11", "triton": "3.6.0", "name": "H200", "cuda": "13.0", "driver": "13.0", "python": "3.12"}


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def _warmed_cache(root):
    (root / "abc123").mkdir(parents=True)
    (root / "abc123" / "_xor_pad_kernel.cubin").write_bytes(b"\x7fELF binary")
    (root / "abc123" / "__grp___xor_pad_kernel.json").write_text("{}")
    return root


def test_a_seed_is_kept_once_and_only_whole(tmp_path, cache_home):
    seed = runner_seed.kept_seed(ENV)
    assert str(seed).startswith(str(cache_home)) and seed != runner_seed.kept_seed({**ENV, "triton": "3.7.0"})
    assert runner_seed.hand_to_runner(seed, tmp_path) is None  # nothing kept yet
    assert not runner_seed.keep(tmp_path / "empty-export", seed)  # an empty export is not a seed
    seed.mkdir(parents=True)  # an oracle that died half way through keeping one
    (seed / "stray").write_text("x")
    assert runner_seed.hand_to_runner(seed, tmp_path) is None
    assert runner_seed.keep(_warmed_cache(tmp_path / "export"), seed)
    assert (seed / runner_seed.COMPLETE).is_file() and not (seed / "stray").exists()
    assert not runner_seed.keep(tmp_path / "export", seed)  # kept once
    given = runner_seed.hand_to_runner(seed, tmp_path / "runner")
    assert (given / "abc123" / "_xor_pad_kernel.cubin").read_bytes() == b"\x7fELF binary"
    assert not (given / runner_seed.COMPLETE).exists()


def test_spares_export_until_a_seed_is_kept_then_hand_it_out(tmp_path, cache_home):
    oracle = SimpleNamespace(device="cuda", environment=ENV)
    spares = Spares(oracle)
    runner = SimpleNamespace(workdir=tmp_path / "r1")
    runner.workdir.mkdir()
    assert spares._seed_for(runner) == {"export_dir": str(runner.workdir / runner_seed.EXPORT_IN_WORKDIR)}
    runner_seed.keep(_warmed_cache(tmp_path / "export"), spares.seed)
    runner2 = SimpleNamespace(workdir=tmp_path / "r2")
    runner2.workdir.mkdir()
    assert spares._seed_for(runner2) == {"seed_dir": str(runner2.workdir / runner_seed.SEED_IN_WORKDIR)}
    assert Spares(SimpleNamespace(device="cpu", environment=ENV))._seed_for(runner2) == {}


def test_a_sandboxed_runner_starts_from_the_seed_and_exports_its_cache(tmp_path):
    """The runner copies the seed into its own Triton cache (inside its sandbox) and, asked to,
    copies that cache out: the seed's files coming back prove both steps happened in there."""
    oracle = Oracle("cpu", tmp_path)
    runner = CandidateProcess(oracle, None, attempt_dir(oracle), None)
    try:
        seed = _warmed_cache(runner.workdir / runner_seed.SEED_IN_WORKDIR)
        runner.spawn()
        export = runner.workdir / runner_seed.EXPORT_IN_WORKDIR
        runner.child.send({"op": "warm", "device": "cpu", "seed_dir": str(seed), "export_dir": str(export)})
        import time

        reply = runner.child.recv(time.monotonic() + 120)
        assert reply["ok"] and reply["seeded"] == 2 and reply["exported"] >= 2, reply
        assert (export / "abc123" / "_xor_pad_kernel.cubin").read_bytes() == b"\x7fELF binary"
    finally:
        runner.kill()
        remove_tree(runner.workdir)  # in /dev/shm, a tmpfs of its own where we may mount


def test_no_seed_is_kept_or_handed_out_where_runners_can_reach_each_other(tmp_path, cache_home, monkeypatch):
    """Under `plain` (no PID or mount namespace) a candidate's surviving process could write into
    a later runner's folder, and so into the kept copy every later runner loads."""
    from kernelscale.verify import isolation

    oracle = SimpleNamespace(device="cuda", environment=ENV)
    spares = Spares(oracle)
    runner_seed.keep(_warmed_cache(tmp_path / "export"), spares.seed)
    runner = SimpleNamespace(workdir=tmp_path / "r")
    runner.workdir.mkdir()
    monkeypatch.setattr(isolation, "_chosen", isolation.Mechanism("plain", True))
    assert spares._seed_for(runner) == {}
    assert not (runner.workdir / runner_seed.SEED_IN_WORKDIR).exists()
    monkeypatch.setattr(isolation, "_chosen", isolation.Mechanism("bwrap", True))
    assert "seed_dir" in spares._seed_for(runner)
