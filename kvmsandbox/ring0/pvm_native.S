/*
 * ring0 trampoline, flavour "pvm-native" (kvm_pvm in native mode; see
 * docs/ring0.md for the rules this follows).
 *
 * The blob is position independent and mapped once per vCPU, in that vCPU's
 * "window" (RING0_WINDOW_SIZE bytes of guest VA). Everything per vCPU is
 * reached RIP-relatively at a fixed offset from the text, so one physical
 * text page serves every vCPU.
 *
 * Exits to the host are OUT instructions: user mode cannot execute them
 * (IOPL is 0 and the TSS has no I/O bitmap), so an exit is never forged by
 * app code; the host also checks the exit RIP against the symbols below.
 * Registers are never modified on the way out: the host reads the exact
 * user state from the vCPU.
 *
 * User mode is entered only with SYSRETQ (an IRETQ from ring0 would leave
 * the vCPU privileged on this hypervisor; utramp_tf's IRETQ runs in user
 * mode already).
 */
#include "layout.h"

        .intel_syntax noprefix
        .text
        .globl ring0_text_start
ring0_text_start:

/* SYSCALL from user mode lands here (MSR_LSTAR). */
        .globl syscall_entry, syscall_exit
syscall_entry:
        out     PORT_SYSCALL, al
syscall_exit:
        ud2

/* Return to user: RCX = user RIP (or utramp), R11 = user RFLAGS, RSP = user RSP. */
        .globl sysret_point
sysret_point:
        sysretq

/*
 * Slow return: switch to this vCPU's kernel page tables, apply the queued
 * page-table writes (the shadow MMU only sees guest-side writes), switch to
 * the target address space (a full CR3 load, which also re-syncs the shadow
 * MMU and flushes this vCPU's TLB), load the user registers and SYSRETQ via
 * the user trampoline. Nothing it reads while app code could run on another
 * vCPU is writable by that app: k_cr3 sits in the read-only cpu page, the
 * queue and the target CR3 in a page only the kernel tables map.
 */
        .globl slow_entry
slow_entry:
        mov     rax, [rip + ring0_text_start + CPU_PAGE + CPU_K_CR3]
        mov     cr3, rax
        lea     rsi, [rip + ring0_text_start + QUEUE_PAGE]
        mov     rcx, [rsi + Q_COUNT]
        lea     rdx, [rsi + Q_OPS]
apply_loop:
        test    rcx, rcx
        jz      apply_done
        mov     rdi, [rdx]
        mov     rax, [rdx + 8]
        test    rdi, OP_SCRUB
        jnz     scrub_page
        mov     [rdi], rax
next_op:
        add     rdx, 16
        dec     rcx
        jmp     apply_loop

/* Zero a freed page-table page entry by entry, writing only live entries. */
scrub_page:
        and     rdi, ~OP_SCRUB
        mov     r8, 512
scrub_loop:
        cmp     qword ptr [rdi], 0
        je      scrub_next
        mov     qword ptr [rdi], 0
scrub_next:
        add     rdi, 8
        dec     r8
        jnz     scrub_loop
        jmp     next_op

/* A batch larger than the queue: back to the host (still on kernel tables) for more. */
apply_done:
        test    qword ptr [rsi + Q_MORE], 1
        jz      apply_last
        .globl  apply_exit
        out     PORT_APPLIED, al
apply_exit:
        ud2
apply_last:
        mov     r11, [rsi + Q_RFLAGS]
        mov     rcx, [rsi + Q_UT_ENTRY]
        mov     rax, [rsi + Q_TARGET_CR3]
        mov     cr3, rax
        mov     rax, [rip + ring0_text_start + PRIV_PAGE + PRIV_RAX]
        mov     rbx, [rip + ring0_text_start + PRIV_PAGE + PRIV_RBX]
        mov     rdx, [rip + ring0_text_start + PRIV_PAGE + PRIV_RDX]
        mov     rsi, [rip + ring0_text_start + PRIV_PAGE + PRIV_RSI]
        mov     rdi, [rip + ring0_text_start + PRIV_PAGE + PRIV_RDI]
        mov     rbp, [rip + ring0_text_start + PRIV_PAGE + PRIV_RBP]
        mov     r8,  [rip + ring0_text_start + PRIV_PAGE + PRIV_R8]
        mov     r9,  [rip + ring0_text_start + PRIV_PAGE + PRIV_R9]
        mov     r10, [rip + ring0_text_start + PRIV_PAGE + PRIV_R10]
        mov     r12, [rip + ring0_text_start + PRIV_PAGE + PRIV_R12]
        mov     r13, [rip + ring0_text_start + PRIV_PAGE + PRIV_R13]
        mov     r14, [rip + ring0_text_start + PRIV_PAGE + PRIV_R14]
        mov     r15, [rip + ring0_text_start + PRIV_PAGE + PRIV_R15]
        mov     rsp, [rip + ring0_text_start + PRIV_PAGE + PRIV_RSP]
        sysretq

/*
 * User trampoline: runs in user mode right after SYSRETQ to restore the two
 * registers SYSRETQ consumes. Its data is in the address space's own private
 * page, so it can only ever hold that app's own values.
 */
        .globl utramp, utramp_tf, utramp_end
utramp:
        mov     rcx, [rip + ring0_text_start + PRIV_PAGE + PRIV_UT_RCX]
        mov     r11, [rip + ring0_text_start + PRIV_PAGE + PRIV_UT_R11]
        jmp     [rip + ring0_text_start + PRIV_PAGE + PRIV_UT_RIP]

/*
 * The same when the app is single-stepping (TF): entered with TF clear, it
 * ends in a user-to-user IRETQ from a frame in the private page, which loads
 * RFLAGS last, so the app's own instruction is the first one that traps.
 */
utramp_tf:
        mov     rcx, [rip + ring0_text_start + PRIV_PAGE + PRIV_UT_RCX]
        mov     r11, [rip + ring0_text_start + PRIV_PAGE + PRIV_UT_R11]
        lea     rsp, [rip + ring0_text_start + PRIV_PAGE + PRIV_UT_FRAME]
        iretq
utramp_end:

/*
 * Back to supervisor mode from a vCPU stopped in user mode (a kick lands
 * wherever the app is): the host points RIP here and the SYSCALL exits
 * through syscall_entry with RCX = enter_kernel_ret.
 */
        .globl enter_kernel, enter_kernel_ret
enter_kernel:
        syscall
enter_kernel_ret:
        ud2

/*
 * Park an idle vCPU on its own kernel tables before the page tables it was
 * last running on are freed (its next entry will load whatever it needs).
 */
        .globl park_entry, park_exit
park_entry:
        mov     rax, [rip + ring0_text_start + CPU_PAGE + CPU_K_CR3]
        mov     cr3, rax
        out     PORT_PARKED, al
park_exit:
        ud2

/*
 * Exception vectors 0-31: every gate runs on IST1 (the private page's stack),
 * so the frame is pushed to a known place even if the fault came from here.
 * excN_exit is the address the host expects after vector N's OUT.
 */
        .balign 16
        .globl exc_vectors, exc_vectors_end
exc_vectors:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .balign 8
        .globl exc\n, exc\n\()_exit
exc\n:
        out     PORT_EXC_BASE + \n, al
exc\n\()_exit:
        ud2
        .endr
exc_vectors_end:

        .globl ring0_text_end
ring0_text_end:
