/*
 * Copied by the harness into a page of its own to be executed there: reports
 * the address it runs at (so a successful execution is unmistakable).
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start
_start:
        lea     rdi, [rip + _start]
        mov     eax, SYS_REPORT
        syscall
        ud2
