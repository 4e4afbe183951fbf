/*
 * One probe per label: the harness points RIP at a probe with its inputs in
 * registers (rdi = address, rsi = value, rcx/rdx as the instruction needs,
 * r15 = jump_probe's target)
 * and expects a fault there. A probe that does not fault falls through to
 * `probe_report`, which reports rax with SYS_REPORT; so does the harness
 * after a fault, by moving RIP to `<probe>_next`.
 *
 * `chain` and `sig_chain` run the privileged instructions one after another
 * (the harness skips each fault): `chain` ends with SYS_REPORT, `sig_chain`
 * is a signal handler and ends with SYS_SIGRETURN.
 */
#include "harness.h"
#include "layout.h"

        .intel_syntax noprefix
        .text
        .globl _start, probe_report
_start:
        ud2

        .macro probe name, insn:vararg
        .globl \name, \name\()_next
\name:
        \insn
\name\()_next:
        jmp     probe_report
        .endm

        probe read_probe, mov rax, [rdi]
        probe write_probe, mov [rdi], rsi
        probe exec_probe, call rdi
        probe jump_probe, jmp r15
        probe ud_probe, ud2
        probe int3_probe, int3
        probe div_probe, div rcx
        probe cr3_write_probe, mov cr3, rdi
        probe cr3_read_probe, mov rax, cr3
        probe cr0_read_probe, mov rax, cr0
        probe rdmsr_probe, rdmsr
        probe wrmsr_probe, wrmsr
        probe hlt_probe, hlt
        probe in_probe, in al, dx
        probe out_probe, out dx, al
        probe out_exit_probe, out PORT_SYSCALL, al
        probe out_exc_probe, out PORT_EXC_BASE + 14, al
        probe cli_probe, cli
        probe invlpg_probe, invlpg [rdi]
        probe lidt_probe, lidt [rdi]
        probe lgdt_probe, lgdt [rdi]
        probe swapgs_probe, swapgs
        probe wbinvd_probe, wbinvd
        probe sysret_probe, sysretq
        probe dr7_probe, mov dr7, rdi
        probe xsetbv_probe, xsetbv
        probe clts_probe, clts
        probe fs_read_probe, mov rax, fs:[0]
        probe gs_read_probe, mov rax, gs:[0]
        probe iret_probe, iretq
        probe int80_probe, int 0x80
        probe sysenter_probe, sysenter

probe_report:
        mov     rdi, rax
        mov     eax, SYS_REPORT
        syscall
        ud2

        .macro privileged_ops prefix
        .globl \prefix\()_cr3_read, \prefix\()_cr3_write, \prefix\()_rdmsr, \prefix\()_wrmsr, \prefix\()_hlt
        mov     ecx, 0xc0000080
\prefix\()_cr3_read:
        mov     rax, cr3
\prefix\()_cr3_write:
        mov     cr3, rax
\prefix\()_rdmsr:
        rdmsr
\prefix\()_wrmsr:
        wrmsr
\prefix\()_hlt:
        hlt
        .endm

        .globl chain, chain_end
chain:
        privileged_ops chain
chain_end:
        mov     rdi, rax
        mov     eax, SYS_REPORT
        syscall
        ud2

        .globl sig_chain, sig_chain_end
sig_chain:
        privileged_ops sig_chain
sig_chain_end:
        mov     eax, SYS_SIGRETURN
        syscall
        ud2
