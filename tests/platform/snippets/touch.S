/*
 * Touch one address in a loop, counting the accesses that completed in
 * SPIN_COUNTER: rdi = address, rsi = 0 to read it, else write rsi to it.
 * Runs until the access faults (the harness unmaps or protects the page
 * from another thread meanwhile), so the count at the fault tells how many
 * accesses got through after the change returned.
 */
#include "harness.h"

        .intel_syntax noprefix
        .text
        .globl _start, touch_read, touch_write
_start:
        test    rsi, rsi
        jnz     write_loop
read_loop:
touch_read:
        mov     rax, [rdi]
        inc     qword ptr [DATA_VA + SPIN_COUNTER]
        jmp     read_loop
write_loop:
touch_write:
        mov     [rdi], rsi
        inc     qword ptr [DATA_VA + SPIN_COUNTER]
        jmp     write_loop
