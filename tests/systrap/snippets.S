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
jump:                   /* jump to rax */
    jmp *%rax

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
