"""cffi builder for the KVM bindings.

Struct layouts and ioctl numbers come from the machine's <linux/kvm.h>
(Debian linux-libc-dev) at build time: cffi's API mode lets the C compiler
fill in every `...` below, so nothing here is a hand-computed offset.
The few C helpers exist because they must run without the GIL (KVM_RUN)
or must not be Python (the signal handler that kicks a vCPU out of KVM_RUN).
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    typedef unsigned char __u8; typedef unsigned short __u16;
    typedef unsigned int __u32; typedef unsigned long long __u64;

    struct kvm_regs {
        __u64 rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
        __u64 r8, r9, r10, r11, r12, r13, r14, r15;
        __u64 rip, rflags;
    };
    struct kvm_segment {
        __u64 base; __u32 limit; __u16 selector;
        __u8 type, present, dpl, db, s, l, g, avl, unusable;
        ...;
    };
    struct kvm_dtable { __u64 base; __u16 limit; ...; };
    struct kvm_sregs {
        struct kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
        struct kvm_dtable gdt, idt;
        __u64 cr0, cr2, cr3, cr4, cr8, efer, apic_base;
        ...;
    };
    struct kvm_fpu { __u8 fpr[8][16]; __u16 fcw; __u16 fsw; __u32 mxcsr; __u8 xmm[16][16]; ...; };
    struct kvm_xsave { __u32 region[1024]; ...; };
    struct kvm_msr_entry { __u32 index; __u32 reserved; __u64 data; };
    struct kvm_msrs { __u32 nmsrs; __u32 pad; ...; };
    struct kvm_msr_list { __u32 nmsrs; ...; };
    struct kvm_cpuid_entry2 {
        __u32 function, index, flags, eax, ebx, ecx, edx;
        ...;
    };
    struct kvm_cpuid2 { __u32 nent; __u32 padding; ...; };
    struct kvm_userspace_memory_region {
        __u32 slot; __u32 flags; __u64 guest_phys_addr; __u64 memory_size; __u64 userspace_addr;
    };
    struct kvm_sync_regs { struct kvm_regs regs; struct kvm_sregs sregs; ...; };

    struct kvm_run_io { __u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset; };
    struct kvm_run_mmio { __u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write; };
    struct kvm_run_internal { __u32 suberror; __u32 ndata; __u64 data[16]; };

    /* Accessors: kvm_run's exit union is anonymous, so C reaches into it. */
    struct kvm_run {
        __u8 immediate_exit; __u32 exit_reason; __u64 kvm_valid_regs; __u64 kvm_dirty_regs; ...;
    };
    struct kvm_run_io *kvm_run_io(struct kvm_run *run);
    struct kvm_run_mmio *kvm_run_mmio(struct kvm_run *run);
    struct kvm_run_internal *kvm_run_internal(struct kvm_run *run);
    struct kvm_sync_regs *kvm_run_sync_regs(struct kvm_run *run);
    __u64 kvm_run_fail_entry_reason(struct kvm_run *run);

    #define KVM_API_VERSION ...
    static const unsigned long KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_CHECK_EXTENSION,
        KVM_GET_VCPU_MMAP_SIZE, KVM_GET_SUPPORTED_CPUID, KVM_GET_MSR_INDEX_LIST,
        KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION, KVM_RUN,
        KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
        KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_FPU, KVM_SET_FPU,
        KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_SET_CPUID2, KVM_GET_CPUID2;
    static const int KVM_CAP_SYNC_REGS, KVM_CAP_XSAVE, KVM_CAP_XSAVE2, KVM_CAP_MAX_VCPUS,
        KVM_CAP_NR_VCPUS, KVM_CAP_USER_MEMORY, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_NR_MEMSLOTS;
    static const int KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS;
    static const int KVM_EXIT_UNKNOWN, KVM_EXIT_IO, KVM_EXIT_HLT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN,
        KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTR, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_IO_OUT;

    int kvm_ioctl(int fd, unsigned long request, void *arg);
    int kvm_ioctl_int(int fd, unsigned long request, unsigned long arg);
    int kvm_run_vcpu(int fd);

    int kick_install(int signo);
    int kick_thread(int tid, int signo);
    int current_tid(void);
    void host_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int out[4]);
    """
)

ffibuilder.set_source(
    "kvmsandbox.kvm._kvm",
    r"""
    #include <errno.h>
    #include <signal.h>
    #include <string.h>
    #include <sys/ioctl.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    #include <linux/kvm.h>

    struct kvm_run_io { __u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset; };
    struct kvm_run_mmio { __u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write; };
    struct kvm_run_internal { __u32 suberror; __u32 ndata; __u64 data[16]; };

    static struct kvm_run_io *kvm_run_io(struct kvm_run *run) { return (struct kvm_run_io *)&run->io; }
    static struct kvm_run_mmio *kvm_run_mmio(struct kvm_run *run) {
        return (struct kvm_run_mmio *)&run->mmio;
    }
    static struct kvm_run_internal *kvm_run_internal(struct kvm_run *run) {
        return (struct kvm_run_internal *)&run->internal;
    }
    static struct kvm_sync_regs *kvm_run_sync_regs(struct kvm_run *run) { return &run->s.regs; }
    static __u64 kvm_run_fail_entry_reason(struct kvm_run *run) {
        return run->fail_entry.hardware_entry_failure_reason;
    }

    /* Return 0 or a positive ioctl result; on failure -errno. */
    static int kvm_ioctl(int fd, unsigned long request, void *arg) {
        int r = ioctl(fd, request, arg);
        return r < 0 ? -errno : r;
    }
    static int kvm_ioctl_int(int fd, unsigned long request, unsigned long arg) {
        int r = ioctl(fd, request, arg);
        return r < 0 ? -errno : r;
    }
    /* cffi drops the GIL around this call: other Sentry threads run meanwhile. */
    static int kvm_run_vcpu(int fd) {
        int r = ioctl(fd, KVM_RUN, 0);
        return r < 0 ? -errno : r;
    }

    /* The kick signal only has to interrupt KVM_RUN (EINTR); its handler does nothing.
       No SA_RESTART, so a blocked ioctl returns EINTR instead of restarting. */
    static void kick_handler(int signo) { (void)signo; }
    static int kick_install(int signo) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        return sigaction(signo, &sa, NULL) < 0 ? -errno : 0;
    }
    static int kick_thread(int tid, int signo) {
        return syscall(SYS_tgkill, getpid(), tid, signo) < 0 ? -errno : 0;
    }
    static int current_tid(void) { return (int)syscall(SYS_gettid); }

    /* Raw CPUID of the host CPU (cpu-features, XSAVE layout). */
    #include <cpuid.h>
    static void host_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int out[4]) {
        __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
    }
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
