"""A CPU machine whose Triton interpreter cannot run our kernels is told so before a run starts."""

from __future__ import annotations

import pytest

from kernelscale.cli import common
from kernelscale.verify.interpreter_check import interpreter_blocker


@pytest.mark.parametrize(
    "numpy_version, triton_version, blocked",
    [
        ("2.4.0", "3.6.0", True),  # the pair seen on a GPU image: every attention candidate failed
        ("2.5.1", "3.5.1", True),
        ("2.3.5", "3.6.0", False),  # numpy only warns
        ("2.4.0", "3.9.0", False),  # Triton converts the element itself
        ("2.4.0rc1", "3.10.0+git1234", False),
    ],
)
def test_the_blocking_pair_is_named(numpy_version, triton_version, blocked):
    reason = interpreter_blocker(numpy_version, triton_version)
    assert (reason is not None) == blocked
    if blocked:
        assert triton_version in reason and numpy_version in reason and "numpy<2.4" in reason


def test_the_installed_pair_runs():
    # the project's own dependencies keep numpy below 2.4 (pyproject.toml)
    assert interpreter_blocker() is None


def test_check_device_refuses_the_cpu_with_one_line(monkeypatch):
    messages = []
    monkeypatch.setattr(
        "kernelscale.verify.interpreter_check.interpreter_blocker",
        lambda: "Triton 3.6.0's CPU interpreter ...",
    )
    monkeypatch.setattr(
        common, "fail", lambda text: messages.append(text) or (_ for _ in ()).throw(SystemExit(2))
    )
    with pytest.raises(SystemExit):
        common.check_device("cpu")
    assert messages == ["Triton 3.6.0's CPU interpreter ..."]
