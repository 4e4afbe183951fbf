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
        mov     [DATA_VA + R_SAVE + 8*0], rax
        mov     [DATA_VA + R_SAVE + 8*1], rbx
        mov     [DATA_VA + R_SAVE + 8*2], rcx
        mov     [DATA_VA + R_SAVE + 8*3], rdx
        mov     [DATA_VA + R_SAVE + 8*4], rsi
        mov     [DATA_VA + R_SAVE + 8*5], rdi
        mov     [DATA_VA + R_SAVE + 8*6], rsp
        mov     [DATA_VA + R_SAVE + 8*7], rbp
        mov     [DATA_VA + R_SAVE + 8*8], r8
        mov     [DATA_VA + R_SAVE + 8*9], r9
        mov     [DATA_VA + R_SAVE + 8*10], r10
        mov     [DATA_VA + R_SAVE + 8*11], r11
        mov     [DATA_VA + R_SAVE + 8*12], r12
        mov     [DATA_VA + R_SAVE + 8*13], r13
        mov     [DATA_VA + R_SAVE + 8*14], r14
        mov     [DATA_VA + R_SAVE + 8*15], r15
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
