"""Detection: a platform this host can run must say so, or the whole suite would silently skip it."""

from __future__ import annotations

import fcntl
import os

import pytest
from platform_harness import probe

KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12


def test_kvm_usable_where_dev_kvm_works():
    """Where /dev/kvm opens and answers KVM_GET_API_VERSION, probe() must call kvm usable."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        pytest.skip(f"/dev/kvm cannot be opened on this host ({exc.strerror}): kvm tests skip here")
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        pytest.skip(f"/dev/kvm is not KVM on this host ({exc.strerror}): kvm tests skip here")
    finally:
        os.close(fd)
    assert version == KVM_API_VERSION
    info = probe("kvm")
    assert info.usable, f"/dev/kvm works, yet kvm says unusable: {info.reason}"


def test_systrap_usable_on_linux():
    """systrap needs only seccomp and signals, which every Linux x86-64 host the suite runs on has."""
    info = probe("systrap")
    assert info.usable, f"systrap says unusable: {info.reason}"
