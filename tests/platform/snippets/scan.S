/*
 * Probe every page of the ranges at S_RANGES ((start, end, stride) triples).
 * For a page that can be read, look at it: does it start with the secret
 * marker (kept bit-inverted in the data page so the data page itself never
 * matches)? Does it look like a page table (at least two non-zero entries,
 * and every non-zero entry has P and U/S set and a frame below 64 GiB)? If
 * S_TRY_WRITE, write its first qword back unchanged. Then SYS_REPORT(page,
 * HIT_* flags). The harness turns a read fault at `scan_read` into "go to
 * scan_skip" and a write fault at `scan_write` into "go to scan_report".
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, scan_read, scan_write, scan_report, scan_skip
_start:
        xor     ebx, ebx
next_range:
        cmp     rbx, [DATA_VA + S_NRANGES]
        jae     scan_done
        imul    rax, rbx, 24
        mov     r12, [DATA_VA + S_RANGES + rax]
        mov     r13, [DATA_VA + S_RANGES + rax + 8]
        mov     r15, [DATA_VA + S_RANGES + rax + 16]
        inc     rbx
scan_page:
        cmp     r12, r13
        jae     next_range
        xor     r14d, r14d
scan_read:
        mov     rax, [r12]
        or      r14d, HIT_READ
        not     rax
        cmp     rax, [DATA_VA + S_NMARK0]
        jne     table_check
        mov     rax, [r12 + 8]
        not     rax
        cmp     rax, [DATA_VA + S_NMARK1]
        jne     table_check
        or      r14d, HIT_MARKER
table_check:
        xor     ecx, ecx
        xor     edx, edx
table_loop:
        mov     rax, [r12 + rcx*8]
        test    rax, rax
        jz      table_next
        mov     r8, rax
        and     r8d, 5
        cmp     r8d, 5
        jne     table_done
        mov     r8, rax
        shr     r8, PTE_PHYS_LIMIT_SHIFT
        and     r8d, 0x7ffffff
        jnz     table_done
        inc     edx
table_next:
        inc     ecx
        cmp     ecx, 512
        jb      table_loop
        cmp     edx, 2
        jb      table_done
        or      r14d, HIT_TABLE
table_done:
        cmp     qword ptr [DATA_VA + S_TRY_WRITE], 0
        je      scan_report
        mov     rax, [r12]
scan_write:
        mov     [r12], rax
        or      r14d, HIT_WRITE
scan_report:
        mov     rdi, r12
        mov     rsi, r14
        mov     eax, SYS_REPORT
        syscall
scan_skip:
        add     r12, r15
        jmp     scan_page
scan_done:
        mov     rdi, rbx
        mov     eax, SYS_EXIT
        syscall
        ud2
