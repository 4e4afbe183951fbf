/*
 * Page fault + map + resume: write one byte to each of RSI fresh pages
 * starting at RDI. Nothing is mapped there, so every write faults; the
 * serving loop maps a page and resumes. Ends with exit(0).
 */
        .intel_syntax noprefix
        .text
        .globl _start
_start:
        test    rsi, rsi
        jz      done
touch:
        mov     byte ptr [rdi], 1
        add     rdi, 4096
        dec     rsi
        jnz     touch
done:
        xor     edi, edi
        mov     eax, 60                 /* exit */
        syscall
        ud2
