"""Static C programs (gcc -static, glibc) run in the sandbox on every usable platform."""

from __future__ import annotations

import os

import pytest


def test_hello_argv_and_exit_code(sandbox_run, program):
    r = sandbox_run([program("hello"), "one", "two"])
    assert (r.code, r.out) == (42, "3 one two\n")


def test_threads_contend_on_futex_mutex(sandbox_run, program):
    r = sandbox_run([program("threads")])
    assert (r.code, r.out) == (0, "sum=16000\n")


def test_fork_50_children_and_reap(sandbox_run, program):
    r = sandbox_run([program("fork50")])
    assert (r.code, r.out) == (0, "reaped=50 ok=1\n")


def test_null_write_is_sigsegv_139(sandbox_run, program):
    assert sandbox_run([program("segv")]).code == 139


def test_proc_self_maps_has_stack(sandbox_run, program):
    r = sandbox_run([program("maps")])
    assert r.code == 0 and r.out.startswith("found stack ")


def test_signals(sandbox_run, program):
    r = sandbox_run([program("signals")])
    assert (r.code, r.out) == (0, "signals ok\n")


def test_invalid_elf_is_enoexec(sandbox_run, program):
    bad = os.path.join(os.path.dirname(program("execbad")), "garbage.bin")
    with open(bad, "wb") as f:
        f.write(b"\x7fELF" + os.urandom(200))
    os.chmod(bad, 0o755)
    r = sandbox_run([program("execbad"), bad])
    assert (r.code, r.out) == (0, f"errno={8}\n")


@pytest.mark.slow
def test_syscall_sweep_with_hostile_arguments(sandbox_run, program):
    r = sandbox_run([program("sweep")], timeout=600)
    assert r.out.rstrip().endswith("sweep done hung=0"), r.out[-2000:]
    assert r.code == 0
    assert "raised" not in r.log and "Sentry bug" not in r.log, r.log[-4000:]
    assert "platform failure" not in r.log, r.log[-4000:]


def test_vdso_clocks_agree_with_syscalls(sandbox_run, program):
    r = sandbox_run([program("clocks")])
    assert (r.code, r.out) == (0, "clocks ok\n")


def test_kernel_behaviours(sandbox_run, program):
    r = sandbox_run([program("kernel")])
    assert (r.code, r.out) == (0, "kernel ok\n")


@pytest.mark.parametrize("threads", [0, 3])
def test_kill_interrupts_a_spinning_process(sandbox_run, program, threads):
    spin = program("spin")
    script = f"{spin} {threads} & busybox sleep 0.2; kill -TERM $!; wait $!; echo status=$?"
    r = sandbox_run(["/bin/busybox", "sh", "-c", script])
    assert (r.code, r.out) == (0, "status=143\n")


def test_fork_inherits_and_exec_resets_fpu_state(sandbox_run, program):
    r = sandbox_run([program("fpufork")])
    assert (r.code, r.out) == (0, "bad_fork=0 bad_exec=0\n")


def test_general_protection_fault_is_sigsegv_si_kernel(sandbox_run, program):
    r = sandbox_run([program("gp")])
    assert (r.code, r.out) == (0, "sig 11 code 0x80 addr (nil)\n")


def test_shared_file_mappings_write_back(sandbox_run, program):
    r = sandbox_run([program("mmapfile")])
    assert (r.code, r.out) == (0, "mmapfile ok\n")
