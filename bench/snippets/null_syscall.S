/*
 * Null system call round trip: getppid forever. The serving loop answers
 * each Syscall event and switches straight back, so one iteration is one
 * app -> platform -> Sentry (Python) -> app round trip.
 */
        .intel_syntax noprefix
        .text
        .globl _start
_start:
        mov     eax, 110                /* getppid */
        syscall
        jmp     _start
