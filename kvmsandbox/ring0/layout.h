/*
 * Guest layout shared by the ring0 sources and the Python loader
 * (kvmsandbox/ring0/layout.py parses the #define lines: one source of truth).
 * Offsets are relative to a vCPU's window unless named otherwise.
 */
#define RING0_BASE          0x7f8000000000  /* first window; PML4 slot 255 */
#define PTMAP_BASE          0x7f0000000000  /* kernel tables only: direct map of kernel memory; slot 254 */
#define MAX_USER_ADDRESS    0x7f0000000000  /* app VAs are [MIN_USER_ADDRESS, MAX_USER_ADDRESS) */
#define MIN_USER_ADDRESS    0x10000
#define RING0_WINDOW_SIZE   0x10000

#define TEXT_PAGE           0x0000          /* trampoline text, two pages, shared by all vCPUs */
#define TEXT_SIZE           0x2000
#define CPU_PAGE            0x2000          /* per vCPU, read-only */
#define CPU_K_CR3           0x00
#define IDT_PAGE            0x3000          /* per vCPU, read-only */
#define GDT_PAGE            0x4000          /* per vCPU, read-only; the TSS follows the GDT */
#define TSS_OFFSET          0x80
#define PRIV_PAGE           0x5000          /* per address space and vCPU, writable: utramp data, regs, IST1 stack */
#define PRIV_UT_RCX         0x00
#define PRIV_UT_R11         0x08
#define PRIV_UT_RIP         0x10
#define PRIV_UT_FRAME       0xc0            /* utramp_tf's IRETQ frame: rip, cs, rflags, rsp, ss */
#define PRIV_RAX            0x40
#define PRIV_RBX            0x48
#define PRIV_RDX            0x50
#define PRIV_RSI            0x58
#define PRIV_RDI            0x60
#define PRIV_RBP            0x68
#define PRIV_R8             0x70
#define PRIV_R9             0x78
#define PRIV_R10            0x80
#define PRIV_R12            0x88
#define PRIV_R13            0x90
#define PRIV_R14            0x98
#define PRIV_R15            0xa0
#define PRIV_RSP            0xa8
#define QUEUE_PAGE          0x8000          /* kernel tables only: queued page-table writes */
#define QUEUE_PAGES         4
#define Q_COUNT             0x00
#define Q_TARGET_CR3        0x08
#define Q_RFLAGS            0x10
#define Q_MORE              0x18            /* 1: exit after applying, more ops follow */
#define Q_UT_ENTRY          0x20            /* utramp or utramp_tf: where the final SYSRETQ goes */
#define Q_OPS               0x40            /* 16-byte ops: (direct-map address | OP_SCRUB?, value) */
#define OP_SCRUB            1

#define PORT_SYSCALL        0x30
#define PORT_APPLIED        0x31
#define PORT_PARKED         0x32
#define PORT_EXC_BASE       0x40            /* 0x40 + vector */
