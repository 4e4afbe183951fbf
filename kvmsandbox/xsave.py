"""XSAVE images handed to a platform: make them loadable, whatever the Sentry (or the app) put there.

Images come from signal frames the app wrote, so they may hold anything.
KVM refuses (EINVAL) and the host's sigreturn rejects (SIGSEGV) an image
whose header names unsupported components or has reserved bits set;
rather than failing, both platforms bring the image into the valid range,
as Linux's sigreturn does with a user frame: unsupported components
dropped, reserved header bytes and MXCSR bits cleared. x87 and SSE are
marked in use so their legacy-area values (FCW, MXCSR, XMM) are loaded as
written: XRSTOR ignores the legacy area of components whose XSTATE_BV bit
is clear, and a Sentry that edits an image means what it wrote there.
"""

from __future__ import annotations

import functools
import struct

MXCSR_OFFSET = 24
XSTATE_BV_OFFSET = 512  # XSAVE header: which components the image holds
HEADER_END = 576  # XCOMP_BV and the reserved rest of the header must be zero
XFEATURE_FP_SSE = 0x3
MXCSR_VALID = 0xFFFF  # flags, masks, rounding, FZ and DAZ: the bits every x86-64 CPU has

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@functools.cache
def host_xfeatures() -> int:
    """XSAVE components this CPU supports (CPUID leaf 0xD.0 EDX:EAX)."""
    from kvmsandbox.kvm._kvm import ffi, lib

    regs = ffi.new("unsigned int[4]")
    lib.host_cpuid(0xD, 0, regs)
    return regs[0] | regs[3] << 32


def sanitize(image: bytes | bytearray, size: int, xfeatures: int) -> bytearray:
    """A `size`-byte copy of `image` that XRSTOR/KVM accept, keeping every valid value it holds."""
    out = bytearray(bytes(image[:size]).ljust(size, b"\0"))
    xstate_bv = _U64.unpack_from(out, XSTATE_BV_OFFSET)[0]
    _U64.pack_into(out, XSTATE_BV_OFFSET, (xstate_bv & xfeatures) | XFEATURE_FP_SSE)
    out[XSTATE_BV_OFFSET + 8 : HEADER_END] = bytes(HEADER_END - XSTATE_BV_OFFSET - 8)
    _U32.pack_into(out, MXCSR_OFFSET, _U32.unpack_from(out, MXCSR_OFFSET)[0] & MXCSR_VALID)
    return out
