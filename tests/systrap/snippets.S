/* App-code snippets for the systrap tests, assembled at 0 and loaded at CODE_ADDR. */
    .text
    .globl syscall_loop
syscall_loop:           /* every switch: one syscall with the registers the test set */
    syscall
    jmp syscall_loop

    .globl getppid_loop
getppid_loop:           /* the null-syscall round trip */
    mov $110, %eax
    syscall
    jmp getppid_loop

    .globl spin
spin:
    jmp spin

    .globl load
load:                   /* rbx = *(rax) */
    mov (%rax), %rbx
    syscall

    .globl store
store:                  /* *(rax) = rbx */
    mov %rbx, (%rax)
    syscall

    .globl jump
jump:                   /* jump to rbx (rax stays the syscall number for a syscall found there) */
    jmp *%rbx

    .globl store_spin
store_spin:             /* *(rax) = rbx, then spin */
    mov %rbx, (%rax)
1:  jmp 1b

    .globl forge_event
forge_event:            /* write signo rbx at rax+4, then state EVENT (rcx) at rax, then spin */
    mov %ebx, 4(%rax)
    mov %ecx, (%rax)
1:  jmp 1b

    .globl breakpoint
breakpoint:
    int3
    syscall

    .globl undefined
undefined:
    ud2

    .globl divide
divide:
    xor %edx, %edx
    xor %ecx, %ecx
    div %rcx

    .globl privileged
privileged:
    hlt

    .globl fpu_roundtrip   /* xmm0 += xmm0 (as doubles), then syscall */
fpu_roundtrip:
    addpd %xmm0, %xmm0
    syscall

    .globl fs_load         /* rbx = %fs:0 */
fs_load:
    mov %fs:0, %rbx
    syscall

    .globl count_loop      /* rbx counts the syscalls made */
count_loop:
    inc %rbx
    syscall
    jmp count_loop

    .globl fpu_loop        /* xmm0 += xmm0 (as doubles) before every syscall */
fpu_loop:
    addpd %xmm0, %xmm0
    syscall
    jmp fpu_loop

    .globl watch           /* read *(rax) until it equals rcx (then syscall); a fault ends it too */
watch:
    mov (%rax), %rbx
    cmp %rcx, %rbx
    jne watch
    syscall
    jmp watch
