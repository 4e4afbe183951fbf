"""Detection: a platform this host can run must say so, or the whole suite would silently skip it."""

from __future__ import annotations

import os

import pytest
from platform_harness import probe


def test_kvm_usable_where_dev_kvm_opens():
    """Where /dev/kvm opens read-write, probe() must call kvm usable."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        pytest.skip(f"/dev/kvm cannot be opened on this host ({exc.strerror}): kvm tests skip here")
    os.close(fd)
    info = probe("kvm")
    assert info.usable, f"/dev/kvm opens, yet kvm says unusable: {info.reason}"


def test_systrap_usable_on_linux():
    """systrap needs only seccomp and signals, which every Linux x86-64 host the suite runs on has."""
    info = probe("systrap")
    assert info.usable, f"systrap says unusable: {info.reason}"
