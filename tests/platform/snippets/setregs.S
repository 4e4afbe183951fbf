/*
 * The Sentry edits registers between switches. The app loads XMM0-15 from
 * R_VSEEDS (for the harness to read back with pull_fpu) and stops at
 * SYS_REPORT; the harness then overwrites every GPR, RFLAGS, RIP (to
 * `landing` or `ud_then_land`), FS base and the XMM registers. `landing`
 * stores exactly what the app finds into R_SAVE / R_SAVE_FLAGS / R_VSAVE
 * (16 bytes apart) and fs:[0] into D_RESULT[0], then exits 0.
 * `ud_then_land` first takes a #UD, so the registers also cross an
 * exception and its resumption.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, set_syscall, set_return, landing, ud_then_land
_start:
        mov     rsp, STACK_TOP
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu  xmm\k, [DATA_VA + R_VSEEDS + 16*\k]
        .endr
        mov     eax, SYS_REPORT
set_syscall:
        syscall
set_return:
        ud2

ud_then_land:
        ud2
landing:
        SAVE_GPRS
        mov     rsp, STACK_TOP
        pushfq
        pop     qword ptr [DATA_VA + R_SAVE_FLAGS]
        cld
        mov     rax, fs:[0]
        mov     [DATA_VA + D_RESULT + 0], rax
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu  [DATA_VA + R_VSAVE + 16*\k], xmm\k
        .endr
        xor     edi, edi
        mov     eax, SYS_EXIT
        syscall
        ud2
