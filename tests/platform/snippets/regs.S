/*
 * Register survival over R_COUNT syscall round trips. Each iteration i loads
 * patterns that change with i into every GPR (seed_k + i; rsp walks a stack
 * page), RFLAGS (arithmetic flags and DF), XMM0-15 or YMM0-15 (the seeds
 * rotated by i), issues SYS_TICK, then checks everything itself: the GPRs
 * but rax are unchanged, rcx = the address after the syscall and r11 = the
 * RFLAGS at the syscall (SYSCALL semantics), fs:[0] reads what the harness
 * says FS base points at (GS base has its own test). rax (the harness's return value) goes to
 * R_LOG[i]. Exits 0 after R_COUNT iterations; 1 with R_FAIL_* filled in on
 * the first mismatch.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, tick_syscall, tick_return
_start:
        mov     rsp, STACK_TOP
        /* AVX is usable iff CPUID.1:ECX has OSXSAVE (27) and AVX (28) and XCR0 has SSE|AVX state. */
        mov     eax, 1
        cpuid
        xor     r8d, r8d
        xor     r9d, r9d
        bt      ecx, 27
        jnc     features_done
        mov     r10d, ecx
        xor     ecx, ecx
        xgetbv
        shl     rdx, 32
        or      rax, rdx
        mov     r9, rax
        bt      r10d, 28
        jnc     features_done
        and     eax, 6
        cmp     eax, 6
        jne     features_done
        mov     r8d, 1
features_done:
        mov     [DATA_VA + R_USE_AVX], r8
        mov     [DATA_VA + R_XCR0], r9
        mov     qword ptr [DATA_VA + R_ITER], 0

iteration:
        mov     rax, [DATA_VA + R_ITER]
        cmp     rax, [DATA_VA + R_COUNT]
        jae     finished
        /* this iteration's GPR patterns */
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        mov     rcx, [DATA_VA + R_SEEDS + 8*\k]
        add     rcx, rax
        mov     [DATA_VA + R_EXP + 8*\k], rcx
        .endr
        mov     rcx, rax
        shl     rcx, 3
        and     ecx, RSP_MASK
        add     rcx, RSP_BASE
        mov     [DATA_VA + R_EXP + 8*6], rcx

        /* vector k = seed (k + i) mod 16 */
        cmp     qword ptr [DATA_VA + R_USE_AVX], 0
        je      load_sse
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        lea     rcx, [rax + \k]
        and     ecx, 15
        shl     ecx, 5
        vmovdqu ymm\k, [rcx + DATA_VA + R_VSEEDS]
        .endr
        jmp     vectors_loaded
load_sse:
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        lea     rcx, [rax + \k]
        and     ecx, 15
        shl     ecx, 5
        movdqu  xmm\k, [rcx + DATA_VA + R_VSEEDS]
        .endr
vectors_loaded:
        /* RFLAGS pattern, then GPRs with MOVs only (they leave RFLAGS alone) */
        mov     rcx, [DATA_VA + R_FSEED]
        add     rcx, rax
        and     ecx, FLAGS_MASK
        or      ecx, 0x202
        mov     [DATA_VA + R_EXP_FLAGS], rcx
        mov     rsp, [DATA_VA + R_EXP + 8*6]
        push    rcx
        popfq
        mov     rbx, [DATA_VA + R_EXP + 8*1]
        mov     rcx, [DATA_VA + R_EXP + 8*2]
        mov     rdx, [DATA_VA + R_EXP + 8*3]
        mov     rsi, [DATA_VA + R_EXP + 8*4]
        mov     rdi, [DATA_VA + R_EXP + 8*5]
        mov     rbp, [DATA_VA + R_EXP + 8*7]
        mov     r8,  [DATA_VA + R_EXP + 8*8]
        mov     r9,  [DATA_VA + R_EXP + 8*9]
        mov     r10, [DATA_VA + R_EXP + 8*10]
        mov     r11, [DATA_VA + R_EXP + 8*11]
        mov     r12, [DATA_VA + R_EXP + 8*12]
        mov     r13, [DATA_VA + R_EXP + 8*13]
        mov     r14, [DATA_VA + R_EXP + 8*14]
        mov     r15, [DATA_VA + R_EXP + 8*15]
        mov     eax, SYS_TICK
tick_syscall:
        syscall
tick_return:
        SAVE_GPRS
        pushfq
        pop     qword ptr [DATA_VA + R_SAVE_FLAGS]
        cld
        mov     rsp, STACK_TOP
        cmp     qword ptr [DATA_VA + R_USE_AVX], 0
        je      save_sse
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        vmovdqu [DATA_VA + R_VSAVE + 32*\k], ymm\k
        .endr
        jmp     vectors_saved
save_sse:
        .irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        movdqu  [DATA_VA + R_VSAVE + 32*\k], xmm\k
        .endr
vectors_saved:
        mov     rax, [DATA_VA + R_ITER]
        mov     rcx, [DATA_VA + R_SAVE + 8*0]
        mov     [DATA_VA + R_LOG + rax*8], rcx

        /* after SYSCALL: rcx = return address, r11 = RFLAGS at the syscall */
        lea     rcx, [rip + tick_return]
        mov     [DATA_VA + R_EXP + 8*2], rcx
        mov     rcx, [DATA_VA + R_EXP_FLAGS]
        mov     [DATA_VA + R_EXP + 8*11], rcx
        mov     edx, 1
check_gpr:
        mov     rcx, [DATA_VA + R_SAVE + rdx*8]
        mov     r8,  [DATA_VA + R_EXP + rdx*8]
        cmp     rcx, r8
        jne     fail
        inc     edx
        cmp     edx, 16
        jb      check_gpr

        mov     edx, WHAT_FLAGS
        mov     rcx, [DATA_VA + R_SAVE_FLAGS]
        and     ecx, FLAGS_MASK
        mov     r8, [DATA_VA + R_EXP_FLAGS]
        and     r8d, FLAGS_MASK
        cmp     rcx, r8
        jne     fail

        mov     edx, WHAT_FS
        mov     rcx, fs:[0]
        mov     r8, [DATA_VA + R_FS_EXPECT]
        cmp     rcx, r8
        jne     fail

        /* vectors: saved k must equal seed (k + i) mod 16; 16 bytes, 32 with AVX */
        xor     edx, edx
check_vec:
        lea     r9, [rdx + rax]
        and     r9d, 15
        shl     r9d, 5
        mov     r10, rdx
        shl     r10, 5
        xor     r11d, r11d
check_vec_qword:
        mov     rcx, [DATA_VA + R_VSAVE + r10 + r11*8]
        mov     r8,  [DATA_VA + R_VSEEDS + r9 + r11*8]
        cmp     rcx, r8
        jne     vec_fail
        inc     r11d
        cmp     r11d, 2
        jb      check_vec_qword
        cmp     qword ptr [DATA_VA + R_USE_AVX], 0
        je      check_vec_next
        cmp     r11d, 4
        jb      check_vec_qword
check_vec_next:
        inc     edx
        cmp     edx, 16
        jb      check_vec

        inc     qword ptr [DATA_VA + R_ITER]
        jmp     iteration

vec_fail:
        shl     r11d, 8
        add     edx, r11d
        add     edx, WHAT_VEC
fail:
        mov     [DATA_VA + R_FAIL_WHAT], rdx
        mov     [DATA_VA + R_FAIL_GOT], rcx
        mov     [DATA_VA + R_FAIL_EXP], r8
        mov     rax, [DATA_VA + R_ITER]
        mov     [DATA_VA + R_FAIL_ITER], rax
        mov     edi, 1
        mov     eax, SYS_EXIT
        syscall
        ud2
finished:
        xor     edi, edi
        mov     eax, SYS_EXIT
        syscall
        ud2
