"""cffi builder for the Sentry side of the systrap handoff.

The handoff is a futex on a word in the shared region: these helpers store,
wake and wait in C so that one switch costs one call, and cffi releases the
GIL for the whole wait (ctypes costs ~1.8 us a call here, cffi ~0.5 us:
shared/facts/systrap-costs.md).
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    uint32_t systrap_handoff(uint32_t *state, uint32_t value, int64_t timeout_ns, int64_t spin_ns);
    uint32_t systrap_wait(uint32_t *state, uint32_t value, int64_t timeout_ns, int64_t spin_ns);
    void systrap_publish(uint32_t *state, uint32_t value);
    int systrap_tgkill(int tgid, int tid, int sig);
    uint32_t systrap_xsave_size(void);
    unsigned long systrap_hwcap2(void);
    int systrap_sud_errno(void);
    int64_t systrap_wait_ack(int ack_fd, int pid_fd, int timeout_ms);
    """
)

ffibuilder.set_source(
    "kvmsandbox.systrap._systrap",
    r"""
    #include <cpuid.h>
    #include <errno.h>
    #include <linux/futex.h>
    #include <poll.h>
    #include <stdint.h>
    #include <string.h>
    #include <sys/auxv.h>
    #include <sys/prctl.h>
    #include <sys/syscall.h>
    #include <time.h>
    #include <unistd.h>

    static int64_t now_ns(void)
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }

    /* Wait while *state == value: spin up to spin_ns, then sleep on the
       futex; give up after timeout_ns. Returns the value last seen. */
    uint32_t systrap_wait(uint32_t *state, uint32_t value, int64_t timeout_ns, int64_t spin_ns)
    {
        int64_t start = now_ns(), left;
        uint32_t seen;
        if (spin_ns > 0) {
            do {
                seen = __atomic_load_n(state, __ATOMIC_ACQUIRE);
                if (seen != value)
                    return seen;
                __builtin_ia32_pause();
            } while (now_ns() - start < spin_ns);
        }
        for (;;) {
            seen = __atomic_load_n(state, __ATOMIC_ACQUIRE);
            if (seen != value)
                return seen;
            left = timeout_ns - (now_ns() - start);
            if (left <= 0)
                return seen;
            struct timespec ts = {left / 1000000000, left % 1000000000};
            syscall(SYS_futex, state, FUTEX_WAIT, value, &ts, NULL, 0);
        }
    }

    static int systrap_wake(uint32_t *state)
    {
        return (int)syscall(SYS_futex, state, FUTEX_WAKE, 1, NULL, NULL, 0);
    }

    /* Store `value` in *state (one atomic store, never torn) and wake its waiter. */
    void systrap_publish(uint32_t *state, uint32_t value)
    {
        __atomic_store_n(state, value, __ATOMIC_SEQ_CST);
        systrap_wake(state);
    }

    /* Publish `value` in *state, wake the stub thread, wait for its answer. */
    uint32_t systrap_handoff(uint32_t *state, uint32_t value, int64_t timeout_ns, int64_t spin_ns)
    {
        systrap_publish(state, value);
        return systrap_wait(state, value, timeout_ns, spin_ns);
    }

    int systrap_tgkill(int tgid, int tid, int sig)
    {
        return syscall(SYS_tgkill, tgid, tid, sig) == 0 ? 0 : errno;
    }

    uint32_t systrap_xsave_size(void)
    {
        unsigned a, b, c, d;
        if (!__get_cpuid_count(0xd, 0, &a, &b, &c, &d))
            return 512;
        return b;
    }

    /* Wait for the stub's acknowledgement on its eventfd: the value read,
       -1 if the stub died first (its pidfd is readable), 0 on timeout. */
    int64_t systrap_wait_ack(int ack_fd, int pid_fd, int timeout_ms)
    {
        struct pollfd fds[2] = {{ack_fd, POLLIN, 0}, {pid_fd, POLLIN, 0}};
        uint64_t value;
        for (;;) {
            int n = poll(fds, 2, timeout_ms);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return 0;
            if (fds[0].revents & POLLIN) {
                if (read(ack_fd, &value, sizeof(value)) == sizeof(value))
                    return (int64_t)value;
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return 0;
            }
            return -1;
        }
    }

    unsigned long systrap_hwcap2(void)
    {
        return getauxval(AT_HWCAP2);
    }

    /* 0 if this kernel has syscall user dispatch (Linux >= 5.11), else the
       errno of turning it off on the calling thread, which is a no-op. */
    int systrap_sud_errno(void)
    {
        return prctl(59 /* PR_SET_SYSCALL_USER_DISPATCH */, 0 /* OFF */, 0, 0, 0) == 0 ? 0 : errno;
    }
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
