/*
 * The systrap stub: one process per app address space, started by the
 * Sentry with a clean environment and three fds (layout.h STUB_*FD).
 *
 * stub_main sets the process up before any app code exists, then becomes
 * the control loop (stub_entry.S). Worker threads run app code; every
 * syscall (seccomp RET_TRAP -> SIGSYS), fault and kick (SIGCHLD) enters
 * `handler`, which publishes the thread's full state in its message in the
 * shared region, sleeps on a futex until the Sentry hands a context back,
 * and returns into it through rt_sigreturn.
 *
 * Built -nostdlib -ffreestanding -mgeneral-regs-only: no libc, no TLS, and
 * the handler never touches the FPU state it is copying.
 */
#include <asm/sigcontext.h>
#include <linux/types.h>

#include "layout.h"

/* Everything is local to the stub: RIP-relative references, no GOT. */
#pragma GCC visibility push(hidden)

#define NR_write 1
#define NR_mmap 9
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigprocmask 14
#define NR_getppid 110
#define NR_prctl 157
#define NR_arch_prctl 158
#define NR_futex 202
#define NR_exit_group 231
#define NR_seccomp 317
#define NR_close_range 436

#define SIGILL 4
#define SIGTRAP 5
#define SIGBUS 7
#define SIGFPE 8
#define SIGSEGV 11
#define SIGCHLD 17
#define SIGKILL 9
#define SIGSYS 31

#define SIG_SETMASK 2
#define SA_SIGINFO 0x4
#define SA_ONSTACK 0x08000000
#define SA_RESTORER 0x04000000

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_FIXED_NOREPLACE 0x100000

#define PR_SET_PDEATHSIG 1
#define PR_SET_NO_NEW_PRIVS 38
#define SECCOMP_SET_MODE_FILTER 1
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

#define FPU_LEGACY_SIZE 512
#define FPU_SW_RESERVED 464 /* bytes 464..511 of the legacy area: the kernel's fx_sw_bytes */

typedef unsigned long u64;
typedef unsigned int u32;

extern void stub_control_loop(void) __attribute__((noreturn));
extern char __stub_end[]; /* stub.ld: the page-aligned end of the stub's image */
extern void stub_restore_rt(void);

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#define sys3(nr, a, b, c) sys6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(nr, a, b, c, d) sys6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

void *memcpy(void *dst, const void *src, unsigned long n)
{
    char *d = dst;
    const char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, unsigned long n)
{
    char *d = dst;
    while (n--)
        *d++ = (char)c;
    return dst;
}

static void die(long code)
{
    for (;;)
        sys3(NR_exit_group, code, 0, 0);
}

/* A set-up step failed with `ret`: if that is an -errno, tell the Sentry
   which through the ack eventfd (DEATH_REPORT + errno; the control loop has
   not acknowledged anything yet), then exit with the step's status. */
static void die_errno(long code, long ret)
{
    u64 report = DEATH_REPORT + (u64)-ret;
    if (ret < 0 && ret >= -4095)
        sys3(NR_write, STUB_ACKFD, &report, sizeof(report));
    die(code);
}

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void (*restorer)(void);
    u64 mask;
};

struct stub_siginfo {
    int signo;
    int err;
    int code;
    int pad;
    u64 addr;   /* si_addr; for SIGSYS _call_addr */
    int syscall; /* SIGSYS only */
    u32 arch;
};

struct stub_ucontext {
    u64 flags;
    u64 link;
    u64 stack[3];
    struct sigcontext mc;
    u64 sigmask;
};

struct msg {
    u32 state;
    u32 signo;
    int code;
    u32 pad;
    u64 nr;
    u64 addr;
    u64 trapno;
    u64 err;
    u64 fpu_len;
    u64 pad2;
    u64 regs[MSG_NREGS];
};

_Static_assert(__builtin_offsetof(struct msg, nr) == MSG_NR, "msg layout");
_Static_assert(__builtin_offsetof(struct msg, fpu_len) == MSG_FPU_LEN, "msg layout");
_Static_assert(__builtin_offsetof(struct msg, regs) == MSG_REGS, "msg layout");
_Static_assert(sizeof(struct msg) <= MSG_FPU, "msg layout");

static inline u64 ro_flags(void)
{
    return *(volatile u64 *)(SHARED_BASE + RO_FLAGS);
}

static u64 get_base(int fs)
{
    u64 v = 0;
    if (ro_flags() & FLAG_FSGSBASE) {
        if (fs)
            __asm__ volatile("rdfsbase %0" : "=r"(v));
        else
            __asm__ volatile("rdgsbase %0" : "=r"(v));
    } else {
        sys3(NR_arch_prctl, fs ? ARCH_GET_FS : ARCH_GET_GS, &v, 0);
    }
    return v;
}

static void set_base(int fs, u64 v)
{
    if ((u64)((long)(v << 16) >> 16) != v)
        return; /* non-canonical: wrfsbase would fault inside the handler and kill the stub */
    if (ro_flags() & FLAG_FSGSBASE) {
        if (fs)
            __asm__ volatile("wrfsbase %0" ::"r"(v));
        else
            __asm__ volatile("wrgsbase %0" ::"r"(v));
    } else {
        sys3(NR_arch_prctl, fs ? ARCH_SET_FS : ARCH_SET_GS, v, 0);
    }
}

/* The XSAVE image in the signal frame: its size as the kernel laid it out. */
static u64 frame_fpu_len(const struct sigcontext *sc)
{
    const struct _fpx_sw_bytes *sw;
    if (!sc->fpstate)
        return 0;
    sw = (const struct _fpx_sw_bytes *)((const char *)sc->fpstate + FPU_SW_RESERVED);
    if (sw->magic1 != FP_XSTATE_MAGIC1)
        return FPU_LEGACY_SIZE;
    return sw->xstate_size < FPU_AREA_SIZE ? sw->xstate_size : FPU_AREA_SIZE;
}

static void save(struct msg *m, int sig, const struct stub_siginfo *si, struct stub_ucontext *uc, u64 fpu_len)
{
    struct sigcontext *sc = &uc->mc;
    u64 *r = m->regs;
    m->signo = (u32)sig;
    m->code = si->code;
    m->nr = sig == SIGSYS ? (u64)(long)si->syscall : 0;
    m->addr = si->addr;
    m->trapno = sc->trapno;
    m->err = sc->err;
    r[0] = sc->rax;
    r[1] = sc->rbx;
    r[2] = sc->rcx;
    r[3] = sc->rdx;
    r[4] = sc->rsi;
    r[5] = sc->rdi;
    r[6] = sc->rsp;
    r[7] = sc->rbp;
    r[8] = sc->r8;
    r[9] = sc->r9;
    r[10] = sc->r10;
    r[11] = sc->r11;
    r[12] = sc->r12;
    r[13] = sc->r13;
    r[14] = sc->r14;
    r[15] = sc->r15;
    r[16] = sc->rip;
    r[17] = sc->eflags;
    r[18] = get_base(1);
    r[19] = get_base(0);
    m->fpu_len = fpu_len;
    if (fpu_len)
        memcpy((char *)m + MSG_FPU, (const void *)sc->fpstate, fpu_len);
}

static void load(const struct msg *m, struct stub_ucontext *uc, u64 fpu_len)
{
    struct sigcontext *sc = &uc->mc;
    const u64 *r = m->regs;
    char *fp = (char *)sc->fpstate;
    const char *img = (const char *)m + MSG_FPU;
    sc->rax = r[0];
    sc->rbx = r[1];
    sc->rcx = r[2];
    sc->rdx = r[3];
    sc->rsi = r[4];
    sc->rdi = r[5];
    sc->rsp = r[6];
    sc->rbp = r[7];
    sc->r8 = r[8];
    sc->r9 = r[9];
    sc->r10 = r[10];
    sc->r11 = r[11];
    sc->r12 = r[12];
    sc->r13 = r[13];
    sc->r14 = r[14];
    sc->r15 = r[15];
    sc->rip = r[16];
    sc->eflags = r[17];
    set_base(1, r[18]);
    set_base(0, r[19]);
    if (fpu_len >= FPU_LEGACY_SIZE) {
        /* Keep the kernel's software-reserved bytes: rt_sigreturn trusts them for the layout. */
        memcpy(fp, img, FPU_SW_RESERVED);
        memcpy(fp + FPU_LEGACY_SIZE, img + FPU_LEGACY_SIZE, fpu_len - FPU_LEGACY_SIZE);
    }
}

static void handler(int sig, struct stub_siginfo *si, struct stub_ucontext *uc)
{
    /* The signal stack lies inside this thread's area, right after its message. */
    u64 here = (u64)__builtin_frame_address(0);
    struct msg *m = (struct msg *)(here & ~(u64)(THREAD_SIZE - 1));
    u64 fpu_len = frame_fpu_len(&uc->mc);

    save(m, sig, si, uc, fpu_len);
    __atomic_store_n(&m->state, STATE_EVENT, __ATOMIC_SEQ_CST);
    sys3(NR_futex, &m->state, FUTEX_WAKE, 1);
    while (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) != STATE_APP)
        sys4(NR_futex, &m->state, FUTEX_WAIT, STATE_EVENT, 0);
    load(m, uc, fpu_len);
}

static const int handled_signals[] = {SIGSYS, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGCHLD};

static void install_handlers(void)
{
    struct kernel_sigaction sa;
    unsigned i;
    sa.handler = (void *)handler;
    sa.flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER;
    sa.restorer = stub_restore_rt;
    sa.mask = ~0UL;
    for (i = 0; i < sizeof(handled_signals) / sizeof(handled_signals[0]); i++) {
        long ret = sys4(NR_rt_sigaction, handled_signals[i], &sa, 0, 8);
        if (ret != 0)
            die_errno(EXIT_SIGACTION, ret);
    }
}

static long parse_pid(const char *s)
{
    long v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* sp: the initial stack (argc, argv..., NULL, envp..., NULL, auxv). argv[1] = the Sentry's pid. */
void stub_main(long *sp) __attribute__((noreturn, used));
void stub_main(long *sp)
{
    long argc = sp[0];
    const char **argv = (const char **)(sp + 1);
    long sentry = argc >= 2 ? parse_pid(argv[1]) : -1;
    u64 all = ~0UL;
    long ret;

    ret = sys3(NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
    if (ret != 0)
        die_errno(EXIT_PDEATHSIG, ret);
    if (sentry <= 0 || sys3(NR_getppid, 0, 0, 0) != sentry)
        die(EXIT_PARENT); /* the Sentry died before PDEATHSIG was armed, or a stray start */
    ret = sys4(NR_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    if (ret != 0)
        die_errno(EXIT_SIGMASK, ret); /* the control thread takes no signals; workers set their own mask */
    /* The kernel put [vvar] and [vdso] just below a randomised mmap base that
       spans ~1 TiB under the stack (or near TASK_SIZE / 3 with an unlimited
       stack rlimit): now and then inside the shared region, more often in the
       app range, where an app page the Sentry has not mapped yet would read
       vDSO bytes instead of faulting. The stub needs neither (its signal
       handlers return through stub_restore_rt), so everything below STUB_BASE
       and between its image and the end of its shared region goes. The
       initial stack is far above, at the top of the address space. */
    ret = sys3(NR_munmap, 0, STUB_BASE, 0);
    if (ret == 0)
        ret = sys3(NR_munmap, __stub_end, SHARED_BASE + SHARED_SIZE - (u64)__stub_end, 0);
    if (ret != 0)
        die_errno(EXIT_UNMAP, ret);
    ret = sys6(NR_mmap, SHARED_BASE, CTL_RO_SIZE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, STUB_SHAREDFD, 0);
    if (ret != SHARED_BASE)
        die_errno(EXIT_SHARED_RO, ret);
    ret = sys6(NR_mmap, SHARED_BASE + CTL_RO_SIZE, SHARED_SIZE - CTL_RO_SIZE, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED_NOREPLACE, STUB_SHAREDFD, CTL_RO_SIZE);
    if (ret != SHARED_BASE + CTL_RO_SIZE)
        die_errno(EXIT_SHARED_RW, ret);
    install_handlers();
    ret = sys3(NR_close_range, 0, STUB_MEMFD - 1, 0);
    if (ret == 0)
        ret = sys3(NR_close_range, STUB_ACKFD + 1, ~0U, 0);
    if (ret != 0)
        die_errno(EXIT_CLOSE_FDS, ret);
    ret = sys6(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
    if (ret != 0)
        die_errno(EXIT_NO_NEW_PRIVS, ret);
    ret = sys3(NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, SHARED_BASE + RO_FPROG_PROCESS);
    if (ret != 0)
        die_errno(EXIT_SECCOMP, ret);
    stub_control_loop();
}
