/*
 * A page of NOPs ending in a 10-byte instruction that starts 5 bytes before
 * the page boundary. The harness maps only the first page (RX) of this
 * blob at a test address, so execution slides to `straddle` and must fault
 * fetching its second half from the next page.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, straddle
_start:
        .rept   4096 - 5
        nop
        .endr
straddle:
        movabs  rax, 0x1122334455667788
        mov     rdi, rax
        mov     eax, SYS_REPORT
        syscall
        ud2
