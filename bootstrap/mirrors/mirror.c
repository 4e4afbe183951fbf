/*
 * A mirror: the host process that stands for one sandbox process, so that
 * host tools (`docker top`, `ctr task ps`, ps -ef) show the container's
 * processes. The sandbox process starts it with the app process's argv, which
 * is what /proc/PID/cmdline then shows; it takes argv[0]'s basename as its
 * name (comm), closes every fd but its stdin, and sleeps in read(0) until the
 * sandbox process closes the pipe's other end (or dies), then exits.
 *
 * It runs with the sandbox process's (empty) privileges and seccomp filter and
 * makes four kinds of syscall: prctl(PR_SET_NAME), close_range, read,
 * exit_group. Built -nostdlib -ffreestanding: no libc, nothing else runs.
 */

#define NR_read 0
#define NR_prctl 157
#define NR_exit_group 231
#define NR_close_range 436

#define PR_SET_NAME 15
#define EINTR 4

typedef unsigned long u64;

/* The kernel's entry state: rsp points at argc, then argv[]. */
__asm__(
    ".globl _start\n"
    "_start:\n"
    "    mov %rsp, %rdi\n"
    "    and $-16, %rsp\n"
    "    call mirror_main\n"
    "    ud2\n");

static long sys3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static const char *basename(const char *path) {
    const char *base = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' && p[1])
            base = p + 1;
    return base;
}

__attribute__((noreturn, used)) void mirror_main(u64 *stack) {
    long argc = (long)stack[0];
    const char **argv = (const char **)(stack + 1);
    char buf[64];
    long n;

    if (argc > 0 && argv[0][0])
        sys3(NR_prctl, PR_SET_NAME, (long)basename(argv[0]), 0);
    sys3(NR_close_range, 1, ~0U, 0);
    do
        n = sys3(NR_read, 0, (long)buf, sizeof buf);
    while (n > 0 || n == -EINTR);
    for (;;)
        sys3(NR_exit_group, 0, 0, 0);
}
