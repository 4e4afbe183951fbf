/*
 * Hold whatever registers the harness set while spinning on SPIN_STOP (the
 * loop touches only the arithmetic flags), so every interrupt lands on a
 * full register set. When stopped, store all 16 GPRs, RFLAGS and XMM0-15
 * at R_SAVE / R_SAVE_FLAGS / R_VSAVE (16 bytes apart) and exit 0.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, hold_loop, hold_loop_end
_start:
hold_loop:
        cmp     qword ptr [DATA_VA + SPIN_STOP], 0
        je      hold_loop
hold_loop_end:
        SAVE_GPRS
        mov     rsp, STACK_TOP
        pushfq
        pop     qword ptr [DATA_VA + R_SAVE_FLAGS]
        cld
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu  [DATA_VA + R_VSAVE + 16*\k], xmm\k
        .endr
        xor     edi, edi
        mov     eax, SYS_EXIT
        syscall
        ud2
