/*
 * Syscall fidelity: for each entry of the table at DATA_VA+D_LOG, load the
 * syscall number and six arguments the harness chose, SYSCALL, and store
 * what came back (rax) and what RCX/R11 hold afterwards into the entry.
 * Exits with the number of entries done.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, echo_syscall, echo_return
_start:
        xor     ebx, ebx
echo_loop:
        cmp     rbx, [DATA_VA + D_PARAM + ECHO_COUNT]
        jae     echo_done
        imul    r13, rbx, ECHO_ENTRY
        add     r13, DATA_VA + D_LOG
        mov     rax, [r13 + E_NR]
        mov     rdi, [r13 + E_ARGS + 0x00]
        mov     rsi, [r13 + E_ARGS + 0x08]
        mov     rdx, [r13 + E_ARGS + 0x10]
        mov     r10, [r13 + E_ARGS + 0x18]
        mov     r8,  [r13 + E_ARGS + 0x20]
        mov     r9,  [r13 + E_ARGS + 0x28]
echo_syscall:
        syscall
echo_return:
        mov     [r13 + E_RET], rax
        mov     [r13 + E_RCX], rcx
        mov     [r13 + E_R11], r11
        inc     rbx
        jmp     echo_loop
echo_done:
        mov     rdi, rbx
        mov     eax, SYS_EXIT
        syscall
        ud2
