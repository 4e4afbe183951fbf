/*
 * systrap stub layout, shared by the stub (C and assembly) and the Sentry
 * (layout.py parses the `#define NAME NUMBER` lines; keep them literal).
 *
 * Everything from STUB_BASE up belongs to the stub; app mappings stay below
 * it, so STUB_BASE is the platform's max_user_address.
 */
#ifndef KVMSANDBOX_SYSTRAP_LAYOUT_H
#define KVMSANDBOX_SYSTRAP_LAYOUT_H

#define MIN_USER_ADDRESS    0x10000
#define STUB_BASE           0x7f0000000000  /* stub ELF; its .text starts here */
#define SHARED_BASE         0x7f1000000000  /* the per-stub shared memfd is mapped here */

/* fds the stub is started with */
#define STUB_MEMFD          3   /* the sandbox memory file */
#define STUB_SHAREDFD       4   /* this stub's shared region */
#define STUB_ACKFD          5   /* eventfd: control-request acknowledgements */

/* Shared region: [ctl RO | ctl RW | thread 0 | thread 1 | ...] */
#define CTL_RO_SIZE         0x10000     /* read-only in the stub: only the Sentry writes it */
#define CTL_RW_OFFSET       0x10000     /* read-write in the stub: untrusted replies */
#define CTL_RW_SIZE         0x10000
#define THREADS_OFFSET      0x20000
#define THREAD_SIZE         0x10000     /* per stub thread: message, then its signal stack */
#define THREAD_MSG_SIZE     0x2000
#define MAX_THREADS         256
#define SHARED_SIZE         0x1020000   /* THREADS_OFFSET + MAX_THREADS * THREAD_SIZE */

/* Control RO area (offsets from SHARED_BASE) */
#define REQ_SEQ             0x0         /* u32 futex: the Sentry bumps it per request */
#define REQ_OP              0x8         /* u64 */
#define REQ_ARGS            0x10        /* u64[7]: for OP_SYSCALL nr then 6 args; OP_CLONE: index */
#define RO_FLAGS            0x48        /* u64 */
#define RO_ACK_OK           0x50        /* u64 = 1: eventfd value for a successful request */
#define RO_ACK_FAIL         0x58        /* u64 = 2: ... for a failed one */
#define RO_SIGMASK_WORKER   0x60        /* u64 sigset: what a worker thread blocks */
#define RO_FPROG_WORKER     0x70        /* struct sock_fprog for worker threads */
#define RO_FPROG_PROCESS    0x80        /* struct sock_fprog for the whole stub */
#define RO_ALTSTACKS        0x1000      /* stack_t[MAX_THREADS], 24 bytes each */
#define RO_FILTER_WORKER    0x4000      /* struct sock_filter[] */
#define RO_FILTER_PROCESS   0x8000      /* struct sock_filter[] */
#define RO_FILTER_MAX       0x800       /* instructions per filter */
#define STACK_T_SIZE        24

#define FLAG_FSGSBASE       1           /* RO_FLAGS: use rd/wrfsbase instead of arch_prctl */

/* Control RW area */
#define RW_RESULT           0x10000     /* i64: raw result of the last request (untrusted) */

/* Control operations */
#define OP_SYSCALL          1
#define OP_CLONE            2

/* Per-thread message (offsets from the thread's area) */
#define MSG_STATE           0x0         /* u32 futex */
#define MSG_SIGNO           0x4         /* u32 */
#define MSG_CODE            0x8         /* i32 si_code */
#define MSG_NR              0x10        /* u64 si_syscall for SIGSYS */
#define MSG_ADDR            0x18        /* u64 si_addr */
#define MSG_TRAPNO          0x20        /* u64 */
#define MSG_ERR             0x28        /* u64 */
#define MSG_FPU_LEN         0x30        /* u64 bytes of XSAVE image the stub saved */
#define MSG_REGS            0x40        /* u64[20]: GPRs in platform.GPR_NAMES order, rip, rflags, fs, gs */
#define MSG_NREGS           20
#define MSG_FPU             0x200       /* XSAVE image, 64-byte aligned */
#define FPU_AREA_SIZE       0x1000

/* MSG_STATE values */
#define STATE_NONE          0           /* fresh thread, not parked yet */
#define STATE_APP           1           /* the Sentry handed a context over: run it */
#define STATE_EVENT         2           /* the stub stopped and published an event */

/* Exit statuses of a stub whose set-up failed (stubproc.EXIT_REASONS) */
#define EXIT_SIGACTION      10
#define EXIT_PDEATHSIG      2
#define EXIT_PARENT         3
#define EXIT_SHARED_RO      4
#define EXIT_SHARED_RW      5
#define EXIT_CLOSE_FDS      6
#define EXIT_NO_NEW_PRIVS   7
#define EXIT_SECCOMP        8
#define EXIT_SIGMASK        9
#define EXIT_UNMAP          11
#define EXIT_WORKER_SETUP   99

/* What a stub whose set-up step failed writes to its ack eventfd before it
   exits: DEATH_REPORT + errno (an ack is 1 or 2) */
#define DEATH_REPORT        0x100000000

#endif
