/*
 * Report the MXCSR forever: each round trip stores it to D_RESULT and hands
 * it to the harness (SYS_REPORT rdi), so the harness can check that a
 * context's FPU state is its own wherever its switches happen to run.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start
_start:
        stmxcsr [DATA_VA + D_RESULT]
        mov     edi, [DATA_VA + D_RESULT]
        mov     eax, SYS_REPORT
        syscall
        jmp     _start
