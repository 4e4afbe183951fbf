/*
 * The conformance suite's fixed app layout, shared by the snippets and the
 * Python harness (platform_harness.py parses the `#define NAME NUMBER` lines
 * with kvmsandbox.ring0.layout.parse_header: one source of truth).
 *
 * Every snippet is linked at 0 and loaded at CODE_VA; it reaches its data
 * with absolute 32-bit addresses, so no register is needed to find it.
 */
#define CODE_VA         0x400000    /* snippet text, RX */
#define CODE_PAGES      4
#define DATA_VA         0x100000    /* RW: parameters from the harness, results from the app */
#define DATA_PAGES      16
#define STACK_VA        0x200000    /* RW */
#define STACK_PAGES     4
#define STACK_TOP       0x204000
#define FS_VA           0x300000    /* RW page the harness points FS base at */
#define GS_VA           0x310000    /* RW page the harness points GS base at */
#define TEST_VA         0x800000    /* first VA the tests map their own pages at */

/* Syscall numbers the snippets use to talk to the harness. */
#define SYS_EXIT        60          /* rdi = status: the snippet is done */
#define SYS_SIGRETURN   15          /* the harness's emulated signal handler returns */
#define SYS_REPORT      500         /* rdi, rsi, rdx: values for the harness */
#define SYS_TICK        501         /* one round trip of the register test */

/* Data page: generic parameter and result slots (offsets from DATA_VA). */
#define D_PARAM         0x000       /* u64[32] from the harness */
#define D_RESULT        0x100       /* u64[32] from the app */
#define D_LOG           0x1000      /* the rest: per-snippet tables and logs */
#define D_LOG_SIZE      0xf000

/* echo.S: table of ECHO_ENTRY-byte entries at D_LOG */
#define ECHO_COUNT      0x000       /* D_PARAM slot: number of entries */
#define ECHO_ENTRY      0x50        /* nr, a0..a5, returned rax, rcx and r11 seen after */
#define E_NR            0x00
#define E_ARGS          0x08
#define E_RET           0x38
#define E_RCX           0x40
#define E_R11           0x48

/* regs.S (offsets from DATA_VA) */
#define R_COUNT         0x000       /* iterations */
#define R_FSEED         0x008       /* RFLAGS pattern seed */
#define R_USE_AVX       0x010       /* set by the app: AVX usable (CPUID + XGETBV) */
#define R_XCR0          0x018       /* the app's XGETBV(0), 0 without OSXSAVE */
#define R_FS_EXPECT     0x020       /* u64 the app expects at fs:[0] */
#define R_ITER          0x030       /* current iteration (app) */
#define R_EXP_FLAGS     0x038       /* RFLAGS the app loaded this iteration */
#define R_FAIL_ITER     0x040       /* first mismatch: iteration, what, got, expected */
#define R_FAIL_WHAT     0x048
#define R_FAIL_GOT      0x050
#define R_FAIL_EXP      0x058
#define R_SEEDS         0x100       /* u64[16], GPR order rax rbx rcx rdx rsi rdi rsp rbp r8..r15 */
#define R_EXP           0x180       /* u64[16]: this iteration's GPR patterns (app) */
#define R_SAVE          0x200       /* u64[16] + flags: what the app found after the syscall */
#define R_SAVE_FLAGS    0x280
#define R_VSEEDS        0x400       /* 16 x 32 bytes of vector seeds */
#define R_VSAVE         0x600       /* 16 x 32 bytes: vector registers after the syscall */
#define R_LOG           0x1000      /* u64[count]: rax the app got back from each tick */
#define WHAT_FLAGS      16
#define WHAT_FS         17
#define WHAT_VEC        32          /* + register index */
#define RSP_BASE        0x202000    /* rsp pattern: RSP_BASE + ((i * 8) & RSP_MASK) */
#define RSP_MASK        0xff8
#define FLAGS_MASK      0xcd5       /* CF PF AF ZF SF DF OF */

/* scan.S (offsets from DATA_VA) */
#define S_NRANGES       0x000
#define S_TRY_WRITE     0x008
#define S_NMARK0        0x010       /* the marker, bit-inverted so the data page never matches */
#define S_NMARK1        0x018
#define S_RANGES        0x1000      /* (start, end, stride) triples */
#define HIT_READ        1
#define HIT_MARKER      2
#define HIT_TABLE       4
#define HIT_WRITE       8
#define PTE_PHYS_LIMIT_SHIFT 36     /* a page-table entry's frame is below 64 GiB */

/* pingpong.S / spin.S (offsets from DATA_VA unless named) */
#define P_ROUNDS        0x008
#define P_LONG_SPINS    0x018       /* a wait longer than this many spins is "long" */
#define P_GIVEUP_SPINS  0x020
#define P_MAX_LONG      0x028       /* give up after this many long waits */
#define P_SKIP_ROUNDS   2           /* start-up rounds not counted */
#define SPIN_COUNTER    0x100
#define SPIN_STOP       0x108

/* avx512.S (offsets from DATA_VA) */
#define Z_COUNT         0x000
#define Z_ITER          0x008
#define Z_SEEDS         0x1000      /* 32 x 64 bytes */
#define Z_KSEEDS        0x1800      /* 8 x 8 bytes */
#define Z_SAVE          0x2000      /* zmm0-31 after each syscall */
#define Z_KSAVE         0x2800      /* k0-7 after each syscall */

#ifdef __ASSEMBLER__
/* Store the 16 GPRs at R_SAVE, in GPR order (rax rbx rcx rdx rsi rdi rsp rbp r8..r15). */
        .macro SAVE_GPRS
        mov     [DATA_VA + R_SAVE + 8*0], rax
        mov     [DATA_VA + R_SAVE + 8*1], rbx
        mov     [DATA_VA + R_SAVE + 8*2], rcx
        mov     [DATA_VA + R_SAVE + 8*3], rdx
        mov     [DATA_VA + R_SAVE + 8*4], rsi
        mov     [DATA_VA + R_SAVE + 8*5], rdi
        mov     [DATA_VA + R_SAVE + 8*6], rsp
        mov     [DATA_VA + R_SAVE + 8*7], rbp
        mov     [DATA_VA + R_SAVE + 8*8], r8
        mov     [DATA_VA + R_SAVE + 8*9], r9
        mov     [DATA_VA + R_SAVE + 8*10], r10
        mov     [DATA_VA + R_SAVE + 8*11], r11
        mov     [DATA_VA + R_SAVE + 8*12], r12
        mov     [DATA_VA + R_SAVE + 8*13], r13
        mov     [DATA_VA + R_SAVE + 8*14], r14
        mov     [DATA_VA + R_SAVE + 8*15], r15
        .endm
#endif
