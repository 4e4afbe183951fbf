/*
 * Spin in user mode, counting, until the harness sets SPIN_STOP through the
 * memory file; then exit with the count. Nothing in the loop traps, so only
 * Context.interrupt() can get the switch back while it runs.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, spin_loop, spin_loop_end
_start:
spin_loop:
        inc     qword ptr [DATA_VA + SPIN_COUNTER]
        cmp     qword ptr [DATA_VA + SPIN_STOP], 0
        je      spin_loop
spin_loop_end:
        mov     rdi, [DATA_VA + SPIN_COUNTER]
        mov     eax, SYS_EXIT
        syscall
        ud2
