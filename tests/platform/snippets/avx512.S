/*
 * AVX-512 state survives round trips: ZMM0-31 (so also YMM/XMM16-31, which
 * compilers and glibc use freely) and the opmask registers k0-7. Reports
 * SYS_REPORT(available, XCR0) first and exits 1 if AVX-512F is not usable.
 * Each iteration i loads zmm_k = seed (k + i) mod 32 and k_j = kseed
 * (j + i) mod 8, issues SYS_TICK, and stores what it then holds at Z_SAVE /
 * Z_KSAVE for the harness to compare at the next event.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start
_start:
        mov     rsp, STACK_TOP
        mov     eax, 1
        cpuid
        bt      ecx, 27                 /* OSXSAVE */
        jnc     unavailable
        mov     eax, 7
        xor     ecx, ecx
        cpuid
        bt      ebx, 16                 /* AVX512F */
        jnc     unavailable
        bt      ebx, 30                 /* AVX512BW: 64-bit opmasks */
        jnc     unavailable
        xor     ecx, ecx
        xgetbv
        mov     r12, rax
        and     eax, 0xe6
        cmp     eax, 0xe6
        jne     unavailable
        mov     edi, 1
        mov     rsi, r12
        mov     eax, SYS_REPORT
        syscall
        mov     qword ptr [DATA_VA + Z_ITER], 0
iteration:
        mov     rax, [DATA_VA + Z_ITER]
        cmp     rax, [DATA_VA + Z_COUNT]
        jae     done
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        lea     rcx, [rax + \k]
        and     ecx, 31
        shl     ecx, 6
        vmovdqu64 zmm\k, [rcx + DATA_VA + Z_SEEDS]
        .endr
        .irp j, 0,1,2,3,4,5,6,7
        lea     rcx, [rax + \j]
        and     ecx, 7
        kmovq   k\j, [DATA_VA + Z_KSEEDS + rcx*8]
        .endr
        mov     eax, SYS_TICK
        syscall
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        vmovdqu64 [DATA_VA + Z_SAVE + 64*\k], zmm\k
        .endr
        .irp j, 0,1,2,3,4,5,6,7
        kmovq   [DATA_VA + Z_KSAVE + 8*\j], k\j
        .endr
        inc     qword ptr [DATA_VA + Z_ITER]
        jmp     iteration
done:
        xor     edi, edi
        mov     eax, SYS_EXIT
        syscall
        ud2
unavailable:
        xor     edi, edi
        mov     rsi, r12
        mov     eax, SYS_REPORT
        syscall
        mov     edi, 1
        mov     eax, SYS_EXIT
        syscall
        ud2
