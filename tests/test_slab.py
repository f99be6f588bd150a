"""The slabs that carry inputs and outputs (verify/slab.py): values arrive whole, with their
layout; whatever the runner does to its side, the oracle's side fails with a SlabError, never
a crash."""

from __future__ import annotations

import os

import pytest
import torch

from kernelscale.verify.slab import MappedSlab, OracleSlab, SlabError, slab_bytes

VALUES = [
    torch.randn(4, 5),
    torch.arange(10).view(2, 5).t(),  # a transposed view: strides travel
    3,
    2.5,
    None,
    (3, 3),  # a kernel size: comes back a tuple
    {"mode": "mean", "dims": [0, 1]},
    torch.tensor([True, False, True]),
    torch.randn(8)[2:5],  # a view into a larger storage: the whole storage travels
    torch.randn(3, dtype=torch.bfloat16),
    torch.empty(0, 4),
]


def _same(a, b) -> bool:
    if not isinstance(a, torch.Tensor):
        return a == b
    return (
        type(b) is torch.Tensor
        and torch.equal(a, b)
        and a.stride() == b.stride()
        and a.storage_offset() == b.storage_offset()
        and a.untyped_storage().nbytes() == b.untyped_storage().nbytes()
    )


def _round_trip(tmp_path, values) -> tuple[OracleSlab, list]:
    """`values` to the runner through an input slab and back through an output slab, each
    direction asserted whole; returns the output slab and the runner's descriptors."""
    inputs = OracleSlab(tmp_path / "in.slab", slab_bytes(values))
    staged = MappedSlab(tmp_path / "in.slab", inputs.capacity, writable=False).read(inputs.write(values))
    assert all(_same(a, b) for a, b in zip(values, staged, strict=True))
    outputs = OracleSlab(tmp_path / "out.slab", slab_bytes(values), writable_by_others=True)
    shipped = MappedSlab(tmp_path / "out.slab", outputs.capacity).write(values)
    assert all(_same(a, b) for a, b in zip(values, outputs.read(shipped), strict=True))
    return outputs, shipped


def test_inputs_and_outputs_arrive_whole_in_both_directions(tmp_path):
    _round_trip(tmp_path, VALUES)


def test_values_read_are_copies_not_views_of_the_shared_pages(tmp_path):
    slab = OracleSlab(tmp_path / "out.slab", 4096, writable_by_others=True)
    mapped = MappedSlab(tmp_path / "out.slab", slab.capacity)
    descriptors = mapped.write([torch.ones(16)])
    first = slab.read(descriptors)[0]
    mapped.write([torch.zeros(16)])  # the runner writes again after the oracle read
    assert torch.equal(first, torch.ones(16))


def test_a_truncated_output_slab_is_the_candidates_error(tmp_path):
    slab = OracleSlab(tmp_path / "out.slab", 4096, writable_by_others=True)
    descriptors = MappedSlab(tmp_path / "out.slab", slab.capacity).write([torch.randn(100)])
    os.truncate(tmp_path / "out.slab", 0)  # a mapping would die of SIGBUS here
    with pytest.raises(SlabError, match="truncated"):
        slab.read(descriptors)


@pytest.mark.parametrize(
    "change",
    [
        {"offset": 4096 * 16},  # outside the slab
        {"offset": 3},  # unaligned
        {"dtype": "object"},
        {"dtype": "float64", "storage_bytes": 12},  # not whole elements
        {"shape": [1000]},  # more elements than the storage holds
        {"storage_offset": -1},
        {"shape": "many"},
        {"dtype": "qint8"},  # torch raises while copying into it: still the runner's error
        {"dtype": "int1"},  # a sub-byte dtype: no copy kernel
    ],
)
def test_bad_descriptors_are_refused(tmp_path, change):
    slab = OracleSlab(tmp_path / "out.slab", 4096, writable_by_others=True)
    (descriptor,) = MappedSlab(tmp_path / "out.slab", slab.capacity).write([torch.randn(8)])
    with pytest.raises(SlabError):
        slab.read([descriptor | change])
    with pytest.raises(SlabError):
        slab.read({"not": "a list"})


def test_too_large_or_untransportable_values_are_refused(tmp_path):
    slab = OracleSlab(tmp_path / "out.slab", 1024, writable_by_others=True)
    mapped = MappedSlab(tmp_path / "out.slab", slab.capacity)
    with pytest.raises(SlabError, match="storage"):
        mapped.write([torch.randn(2048)])
    with pytest.raises(SlabError, match="holding more than numbers"):
        mapped.write([[torch.ones(2)]])  # a tensor inside a list
    with pytest.raises(SlabError, match="holding more than numbers"):
        mapped.write([object()])


def test_the_input_slab_is_read_only_to_the_runner_and_links_are_not_followed(tmp_path):
    slab = OracleSlab(tmp_path / "in.slab", 4096)
    assert os.stat(tmp_path / "in.slab").st_mode & 0o777 == 0o644
    with pytest.raises(SlabError, match="read-only"):
        MappedSlab(tmp_path / "in.slab", slab.capacity, writable=False).write([torch.ones(2)])
    os.symlink(tmp_path / "in.slab", tmp_path / "link.slab")
    with pytest.raises(OSError):
        MappedSlab(tmp_path / "link.slab", slab.capacity, writable=False)
    with pytest.raises(SlabError, match="not a slab"):
        MappedSlab(tmp_path / "in.slab", slab.capacity * 2, writable=False)


def test_pinning_a_slab_without_a_cuda_context_is_refused_quietly(tmp_path):
    """Page-locking is a speed-up only: where there is no driver or no context, plain copies."""
    oracle = OracleSlab(tmp_path / "in.slab", 4096)
    mapped = MappedSlab(oracle.path, oracle.capacity, writable=False)
    assert mapped.pin() is False
    x = torch.arange(8.0)
    [back] = mapped.read(oracle.write([x]))
    assert torch.equal(back, x)
    oracle.close()


def test_large_copies_in_chunks_arrive_whole_and_a_short_file_is_still_caught(tmp_path, monkeypatch):
    """The oracle copies large values through the slab in chunks on a few threads: the bytes
    arrive in order, and a file cut short in the middle of a chunk is still the runner's error."""
    import kernelscale.verify.slab as slab_module

    monkeypatch.setattr(slab_module, "IO_CHUNK", 1000)
    monkeypatch.setattr(slab_module, "IO_THREADS", 3)
    outputs, shipped = _round_trip(tmp_path, [torch.randn(50, 37), torch.arange(4001, dtype=torch.int64)])
    os.truncate(tmp_path / "out.slab", 12345)
    with pytest.raises(SlabError, match="truncated"):
        outputs.read(shipped)


def test_the_oracles_slab_is_reserved_whole_when_made(tmp_path):
    """No write of the oracle's needs new space once the candidate runs (it could fill /dev/shm)."""
    slab = OracleSlab(tmp_path / "in.slab", 1 << 20)
    assert os.fstat(slab.fd).st_blocks * 512 >= slab.capacity


def test_descriptors_that_claim_more_than_the_slab_are_refused_before_any_allocation(tmp_path):
    """The same storage described many times over would make the oracle allocate that many."""
    slab = OracleSlab(tmp_path / "out.slab", 4096, writable_by_others=True)
    (descriptor,) = MappedSlab(tmp_path / "out.slab", slab.capacity).write([torch.randn(512)])
    assert len(slab.read([descriptor] * 2)) == 2  # 2 x 2048 bytes: within the slab
    with pytest.raises(SlabError, match="claim"):
        slab.read([descriptor] * 1000)
    with pytest.raises(SlabError):
        slab.read([descriptor | {"storage_bytes": "4096"}])


def test_a_deferred_write_reaches_the_file_only_when_flushed(tmp_path):
    """The timed loop stages the next input set while the reference runs and writes it into the
    file after (candidate.prepare): until `flush`, the runner's mapping holds the set before."""
    first, second = [torch.zeros(64)], [torch.ones(64)]
    oracle = OracleSlab(tmp_path / "in.slab", slab_bytes(first))
    runner = MappedSlab(tmp_path / "in.slab", oracle.capacity, writable=False)
    descriptors = oracle.write(first)
    assert torch.equal(runner.read(descriptors)[0], first[0])
    later = oracle.write(second, deferred=True)
    assert torch.equal(runner.read(later)[0], first[0])  # staged, not yet in the file
    oracle.flush()
    assert torch.equal(runner.read(later)[0], second[0])
    oracle.flush()  # nothing left: a second flush writes nothing
    assert oracle.writes == 2
    big = [torch.randn(64)]
    latest = oracle.write(big, deferred=True)
    oracle.flush(background=True)  # in a thread, while the caller runs the reference
    oracle.wait()
    assert torch.equal(runner.read(latest)[0], big[0])
    oracle.write(first, deferred=True)
    oracle.flush(background=True)
    again = oracle.write(second)  # waits for the flush in flight before reusing the host buffer
    assert torch.equal(runner.read(again)[0], second[0])


def test_a_call_refuses_inputs_staged_before_a_newer_set(tmp_path):
    """Staging a set replaces the one before in the slab's host buffer: a call given the older
    one would send the runner the newer bytes, so it is refused as the verifier's own error."""
    from types import SimpleNamespace

    from kernelscale.verify.candidate import CandidateProcess

    loaded = SimpleNamespace(input_bytes=0, output_bytes=256)
    process = CandidateProcess(SimpleNamespace(device="cpu"), loaded, tmp_path, None)
    older = process.prepare([torch.zeros(16)])
    process.prepare([torch.ones(16)])
    with pytest.raises(ValueError, match="replaced since"):
        process.call([torch.zeros(16)], deadline=0.0, staged=older)


def test_a_failed_write_of_the_input_slab_is_the_candidates(tmp_path, monkeypatch):
    """The slab's pages are reserved before any candidate code runs; a write fails only when the
    candidate's process shrank the file and filled /dev/shm. That must be its `runtime_error`,
    in the foreground and from the background flush alike, never a verifier error that would
    stop the search."""
    import errno
    from types import SimpleNamespace

    from kernelscale.verify.candidate import CandidateProcess
    from kernelscale.verify.replies import AttemptFailed

    def full(self, view, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    loaded = SimpleNamespace(input_bytes=0, output_bytes=256)
    process = CandidateProcess(SimpleNamespace(device="cpu"), loaded, tmp_path, None)
    staged = process.prepare([torch.zeros(16)])
    monkeypatch.setattr(OracleSlab, "_write_all", full)
    for background in (False, True):
        staged = process.prepare([torch.zeros(16)])
        with pytest.raises(AttemptFailed) as failed:
            staged.flush(background)
            staged.flush()  # a background flush's error surfaces when it is waited for
        assert failed.value.verdict.status == "runtime_error"
        assert "input slab could not be written" in failed.value.verdict.reason
