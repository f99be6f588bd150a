"""Which sandbox mechanism the probe picks, and as whom the candidate runs under it."""

from __future__ import annotations

import os

import pytest

from kernelscale.verify import isolation

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the case of an oracle running as root")


@ROOT
def test_the_probe_never_falls_back_to_running_candidates_as_root(monkeypatch):
    # With no namespaces to be had and `nobody` unable to run this Python, the last resort was
    # `plain` as uid 0: the candidate as root with the host in reach (found by a red-team pass).
    # Now that takes FORCE_ENV=plain; the probe's own error says so.
    monkeypatch.setattr(isolation, "MECHANISMS", ("plain",))
    monkeypatch.setattr(isolation, "_try", lambda mech: None if not mech.drop_uid else "plain: as nobody, no")
    monkeypatch.delenv(isolation.FORCE_ENV, raising=False)
    try:
        with pytest.raises(RuntimeError, match="KERNELSCALE_ISOLATION=plain"):
            isolation.probe(refresh=True)
        monkeypatch.setenv(isolation.FORCE_ENV, "plain")
        assert isolation.probe(refresh=True).uid == 0  # asked for by name: allowed
    finally:
        monkeypatch.undo()
        isolation.probe(refresh=True)


@ROOT
def test_the_probe_folder_lets_nobody_in(monkeypatch):
    # The probe ran in a 0700 folder, so `plain` as nobody always failed it where the oracle is
    # root, however the machine was set up.
    seen = []

    def build(mech, argv, writable, limits, env, chdir):
        folder = str(writable[0])
        seen.append(os.stat(os.path.dirname(folder)).st_mode & 0o777)
        raise OSError("stop here")

    monkeypatch.setattr(isolation, "build", build)
    with pytest.raises(OSError):
        isolation._try(isolation.Mechanism("plain", True))
    assert seen == [0o711]
