"""python-kvm: ioctls work against the real /dev/kvm, and failures name the ioctl and errno."""

from __future__ import annotations

import errno
import os

import pytest

from kvmsandbox.kvm import MSR_LSTAR, Kvm, KVMError
from kvmsandbox.kvm._kvm import ffi, lib

pytestmark = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK),
    reason="/dev/kvm missing or not accessible: KVM tests skipped",
)


@pytest.fixture
def kvm():
    handle = Kvm()
    yield handle
    handle.close()


def test_system_ioctls(kvm):
    assert kvm.api_version == lib.KVM_API_VERSION == 12
    assert kvm.vcpu_mmap_size >= ffi.sizeof("struct kvm_run")
    assert kvm.check_extension(lib.KVM_CAP_USER_MEMORY) > 0
    assert kvm.check_extension(lib.KVM_CAP_IMMEDIATE_EXIT) > 0
    leaves = {(function, index): regs for function, index, *regs in kvm.supported_cpuid().entries()}
    vendor_regs = leaves[(0, 0)]
    vendor = b"".join(r.to_bytes(4, "little") for r in (vendor_regs[1], vendor_regs[3], vendor_regs[2]))
    host = ffi.new("unsigned int[4]")
    lib.host_cpuid(0, 0, host)
    assert vendor == b"".join(r.to_bytes(4, "little") for r in (host[1], host[3], host[2]))
    assert isinstance(kvm.msr_index_list(), list)


def test_vcpu_registers_round_trip(kvm):
    vm = kvm.create_vm()
    vcpu = vm.create_vcpu(0)
    try:
        regs = vcpu.get_regs()
        regs.rbx = 0x1122334455667788
        regs.rip = 0x1000
        vcpu.set_regs(regs)
        again = vcpu.get_regs()
        assert (again.rbx, again.rip) == (0x1122334455667788, 0x1000)
        assert vcpu.set_msrs([(MSR_LSTAR, 0x7F80_0000_0000)]) == 1
        assert vcpu.get_msrs([MSR_LSTAR]) == {MSR_LSTAR: 0x7F80_0000_0000}
        image = vcpu.get_xsave()
        assert len(image) == ffi.sizeof("struct kvm_xsave")
        vcpu.set_xsave(image)
    finally:
        vcpu.close()
        vm.close()


def test_failure_names_ioctl_and_errno(kvm):
    vm = kvm.create_vm()
    try:
        with pytest.raises(KVMError) as info:
            vm.set_user_memory_region(0, 0x1003, 4096, 0x1000)  # unaligned guest address
        assert info.value.ioctl == "KVM_SET_USER_MEMORY_REGION"
        assert info.value.errno == errno.EINVAL
        assert "KVM_SET_USER_MEMORY_REGION: EINVAL" in str(info.value)
        vm.create_vcpu(0).close()
        with pytest.raises(KVMError, match="KVM_CREATE_VCPU: EEXIST"):
            vm.create_vcpu(0)
    finally:
        vm.close()
