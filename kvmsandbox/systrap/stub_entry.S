/*
 * The parts of the stub that must not touch writable memory.
 *
 * App code shares the stub's address space and can write every writable
 * page of it (stacks, .data, the shared thread messages). Code that holds
 * more host privileges than a worker's seccomp filter grants therefore uses
 * registers and read-only memory only:
 *
 *  - stub_control_loop: the stub's main thread, serving the Sentry's
 *    requests (mmap/munmap/mprotect, new threads) from the read-only control
 *    page and acknowledging each through an eventfd with a value picked by
 *    register, so app code can neither forge a request nor its outcome;
 *  - stub_worker_start: a new thread's set-up (signal stack, mask, syscall
 *    user dispatch, its own seccomp filter) until it can only trap.
 *
 * Once a worker's filter is installed it parks in the signal handler
 * (stub.c) by executing ud2; from then on it only ever runs app code or the
 * handler.
 */
#include "layout.h"

#define NR_write 1
#define NR_rt_sigprocmask 14
#define NR_rt_sigreturn 15
#define NR_clone 56
#define NR_sigaltstack 131
#define NR_prctl 157
#define NR_futex 202
#define NR_exit_group 231
#define NR_seccomp 317

#define FUTEX_WAIT 0
#define SIG_SETMASK 2
#define SECCOMP_SET_MODE_FILTER 1
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
/* CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM */
#define WORKER_CLONE_FLAGS 0x50f00

    .section .text.entry, "ax"
    .globl _start
_start:
    mov %rsp, %rdi
    and $-16, %rsp
    call stub_main
    ud2

    .text
/* void stub_control_loop(void): never returns. r14 = shared base, r15 = last request seen. */
    .globl stub_control_loop
stub_control_loop:
    movabs $SHARED_BASE, %r14
    xor %r15d, %r15d
.Lwait:
    mov REQ_SEQ(%r14), %eax
    cmp %r15d, %eax
    jne .Lrequest
    lea REQ_SEQ(%r14), %rdi
    mov $FUTEX_WAIT, %esi
    mov %r15d, %edx
    xor %r10d, %r10d
    mov $NR_futex, %eax
    syscall
    jmp .Lwait

.Lrequest:
    mov %eax, %r15d
    mov REQ_OP(%r14), %rax
    cmp $OP_CLONE, %rax
    je .Lclone
    cmp $OP_SYSCALL, %rax
    jne .Lbad_op
    mov REQ_ARGS+0x00(%r14), %rax
    mov REQ_ARGS+0x08(%r14), %rdi
    mov REQ_ARGS+0x10(%r14), %rsi
    mov REQ_ARGS+0x18(%r14), %rdx
    mov REQ_ARGS+0x20(%r14), %r10
    mov REQ_ARGS+0x28(%r14), %r8
    mov REQ_ARGS+0x30(%r14), %r9
    syscall
    jmp .Lreply

.Lbad_op:
    mov $-22, %rax              /* -EINVAL */
    jmp .Lreply

.Lclone:
    mov REQ_ARGS(%r14), %r12    /* thread index, survives into the child */
    cmp $MAX_THREADS, %r12
    jae .Lbad_op
    mov $WORKER_CLONE_FLAGS, %edi
    xor %esi, %esi              /* same stack pointer: the child never touches the stack */
    xor %edx, %edx
    xor %r10d, %r10d
    xor %r8d, %r8d
    mov $NR_clone, %eax
    syscall
    test %rax, %rax
    jz stub_worker_start

.Lreply:
    mov %rax, RW_RESULT(%r14)
    lea RO_ACK_OK(%r14), %rsi
    lea RO_ACK_FAIL(%r14), %rcx
    cmp $-4095, %rax
    cmovae %rcx, %rsi
    mov $STUB_ACKFD, %edi
    mov $8, %edx
    mov $NR_write, %eax
    syscall
    jmp .Lwait

/* A new worker: r12 = its index, r14 = shared base; all signals blocked (inherited). */
stub_worker_start:
    imul $STACK_T_SIZE, %r12, %rdi
    lea RO_ALTSTACKS(%r14,%rdi), %rdi
    xor %esi, %esi
    mov $NR_sigaltstack, %eax
    syscall
    test %rax, %rax
    jnz .Ldie
    mov $SIG_SETMASK, %edi
    lea RO_SIGMASK_WORKER(%r14), %rsi
    xor %edx, %edx
    mov $8, %r10d
    mov $NR_rt_sigprocmask, %eax
    syscall
    test %rax, %rax
    jnz .Ldie
    /* Syscall user dispatch: every syscall from outside the stub's code is a
       SIGSYS before seccomp or the syscall table see it (seccomp alone lets
       uretprobe/uprobe through on recent kernels). */
    mov $PR_SET_SYSCALL_USER_DISPATCH, %edi
    mov $PR_SYS_DISPATCH_ON, %esi
    movabs $STUB_BASE, %rdx
    movabs $__stub_text_end, %r10
    sub %rdx, %r10
    xor %r8d, %r8d
    mov $NR_prctl, %eax
    syscall
    test %rax, %rax
    jnz .Ldie
    mov $SECCOMP_SET_MODE_FILTER, %edi
    xor %esi, %esi
    lea RO_FPROG_WORKER(%r14), %rdx
    mov $NR_seccomp, %eax
    syscall
    test %rax, %rax
    jnz .Ldie
    .globl stub_park
stub_park:
    ud2
.Ldie:
    mov $EXIT_WORKER_SETUP, %edi
    mov $NR_exit_group, %eax
    syscall
    ud2

/* The sa_restorer of every handler. */
    .globl stub_restore_rt
stub_restore_rt:
    mov $NR_rt_sigreturn, %eax
    syscall
    ud2

    .section .note.GNU-stack, "", @progbits
