/*
 * Two contexts take turns on a shared counter: role r may bump it only when
 * its parity is r. Without two vCPUs running at once, every turn waits for
 * the host scheduler to switch threads (milliseconds); running concurrently
 * a turn takes well under a microsecond. Counts "long" waits and gives up
 * after P_MAX_LONG of them (or one wait of P_GIVEUP_SPINS), so a platform
 * that serialises contexts fails fast instead of hanging.
 * Inputs: rdi = role (0 or 1), rsi = VA of the shared counter; the rest from
 * the data page. Reports (rounds done, long waits) with SYS_REPORT, then
 * exits 0, or exits 1 after giving up.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start
_start:
        mov     rdx, [DATA_VA + P_ROUNDS]
        mov     r10, [DATA_VA + P_LONG_SPINS]
        xor     r8, r8                  /* rounds done */
        xor     r9, r9                  /* long waits */
pp_round:
        cmp     r8, rdx
        jae     pp_done
        xor     ecx, ecx                /* spins this round */
pp_wait:
        mov     rax, [rsi]
        mov     rbx, rax
        and     ebx, 1
        cmp     rbx, rdi
        je      pp_go
        inc     rcx
        cmp     rcx, [DATA_VA + P_GIVEUP_SPINS]
        jb      pp_wait
        jmp     pp_giveup
pp_go:
        cmp     r8, P_SKIP_ROUNDS
        jb      pp_bump
        cmp     rcx, r10
        jb      pp_bump
        inc     r9
        cmp     r9, [DATA_VA + P_MAX_LONG]
        jae     pp_giveup
pp_bump:
        inc     rax
        mov     [rsi], rax
        inc     r8
        jmp     pp_round
pp_done:
        mov     rdi, r8
        mov     rsi, r9
        mov     eax, SYS_REPORT
        syscall
        xor     edi, edi
        mov     eax, SYS_EXIT
        syscall
        ud2
pp_giveup:
        mov     rdi, r8
        mov     rsi, r9
        mov     eax, SYS_REPORT
        syscall
        mov     edi, 1
        mov     eax, SYS_EXIT
        syscall
        ud2
