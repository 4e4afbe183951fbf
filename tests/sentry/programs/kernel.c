/* Kernel behaviours in one program: each check prints FAIL with its line; "kernel ok" at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { printf("FAIL %s line %d errno %d\n", #c, __LINE__, errno); return 1; } } while (0)

static sigjmp_buf jb;
static volatile void *fault_addr;
static void on_segv(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; fault_addr = si->si_addr; siglongjmp(jb, 1); }
static void on_alrm(int sig) { (void)sig; }

/* Skip the faulting 11-byte `movl $1, 0x1234` by editing the saved RIP: rt_sigreturn must honour it. */
static volatile long skipped_rip;
static void skip_insn(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ucv;
	skipped_rip = uc->uc_mcontext.gregs[REG_RIP];
	uc->uc_mcontext.gregs[REG_RIP] += 11;
	uc->uc_mcontext.gregs[REG_RAX] = 77;
}

static long futex(void *addr, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static int fa, fb, started;

static void *wait_on_a(void *arg)
{
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&fa, __ATOMIC_SEQ_CST) == 0)
		syscall(SYS_futex, &fa, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, (long)arg);
	return arg;
}

static void *spin_forever(void *arg)
{
	for (volatile unsigned long i = 0;; i++)
		;
	return arg;
}

static void *block_in_read(void *arg)
{
	int p[2];
	char c;
	if (pipe(p) == 0)
		read(p[0], &c, 1);
	return arg;
}

static pthread_mutex_t robust;
static void *die_holding(void *arg) { pthread_mutex_lock(&robust); return arg; }

static void *exec_thread(void *arg)
{
	char *args[] = {"/bin/busybox", "true", NULL};
	execv(args[0], args);
	return arg;
}

int main(void)
{
	/* uname, rlimits, random, affinity */
	struct utsname u;
	CHECK(uname(&u) == 0 && strcmp(u.release, "4.4.0") == 0 && strcmp(u.machine, "x86_64") == 0);
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 1024);
	rl.rlim_cur = 512;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 512);
	char rnd[32];
	CHECK(getrandom(rnd, sizeof rnd, 0) == sizeof rnd);
	cpu_set_t cpus;
	CHECK(sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) >= 1);
	CHECK(syscall(SYS_rseq, NULL, 0, 0, 0) == -1 && errno == ENOSYS);
	CHECK(syscall(333 + 100) == -1 && errno == ENOSYS);

	/* SIGSEGV handler sees the fault address and can longjmp out. */
	struct sigaction sa = {0};
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
	if (sigsetjmp(jb, 1) == 0) {
		*(volatile int *)0x1234 = 1;
		CHECK(0);
	}
	CHECK(fault_addr == (void *)0x1234);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sigsetjmp(jb, 1) == 0) {
		ro[10] = 1;
		CHECK(0);
	}
	CHECK(fault_addr == ro + 10);
	CHECK(mprotect(ro, 4096, PROT_READ | PROT_WRITE) == 0);
	ro[10] = 1;
	CHECK(munmap(ro, 4096) == 0);
	sa.sa_sigaction = skip_insn;
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
	long rax;
	__asm__ volatile("movq $5, %%rax\n\tmovl $1, 0x1234" : "=a"(rax) : : "memory");
	CHECK(rax == 77 && skipped_rip != 0);
	sa.sa_sigaction = on_segv;
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
	/* EFAULT, not a crash, for bad pointers handed to the kernel. */
	CHECK(syscall(SYS_uname, (void *)8) == -1 && errno == EFAULT);
	CHECK(syscall(SYS_clock_gettime, 0, (void *)-1L) == -1 && errno == EFAULT);

	/* Futexes: EAGAIN on a changed value, ETIMEDOUT, and a shared futex across fork. */
	int word = 1;
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 2, NULL) == -1 && errno == EAGAIN);
	struct timespec short_ts = {0, 20000000};
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 1, &short_ts) == -1 && errno == ETIMEDOUT);
	int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*shared = 0;
	pid_t pid = fork();
	if (pid == 0) {
		usleep(20000);
		*shared = 1;
		futex(shared, FUTEX_WAKE, 1, NULL);
		_exit(0);
	}
	while (*shared == 0)
		futex(shared, FUTEX_WAIT, 0, NULL);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));

	/* Bitsets select waiters; CMP_REQUEUE moves waiters to another futex; WAKE_OP wakes both. */
	pthread_t w[3];
	for (long i = 0; i < 3; i++)
		CHECK(pthread_create(&w[i], NULL, wait_on_a, (void *)(1L << i)) == 0);
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 3)
		sched_yield();
	usleep(50000);
	CHECK(syscall(SYS_futex, &fa, FUTEX_WAKE_BITSET_PRIVATE, 3, NULL, NULL, 8) == 0);
	CHECK(syscall(SYS_futex, &fa, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)2L, &fb, 1) == -1 && errno == EAGAIN);
	CHECK(syscall(SYS_futex, &fa, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)2L, &fb, 0) == 2);
	__atomic_store_n(&fa, 1, __ATOMIC_SEQ_CST);
	CHECK(syscall(SYS_futex, &fa, FUTEX_WAKE_PRIVATE, 5, NULL, NULL, 0) == 1);
	int op = FUTEX_OP(FUTEX_OP_SET, 7, FUTEX_OP_CMP_EQ, 0);
	CHECK(syscall(SYS_futex, &fa, FUTEX_WAKE_OP_PRIVATE, 1, (void *)2L, &fb, op) == 2 && fb == 7);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_join(w[i], NULL) == 0);

	/* A robust mutex whose owner died: the next locker gets EOWNERDEAD. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&robust, &attr);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, die_holding, NULL) == 0 && pthread_join(th, NULL) == 0);
	CHECK(pthread_mutex_lock(&robust) == EOWNERDEAD);
	CHECK(pthread_mutex_consistent(&robust) == 0 && pthread_mutex_unlock(&robust) == 0);

	/* SA_RESTART: a read interrupted by a handled signal is restarted and gets the data. */
	struct sigaction al = {0};
	al.sa_handler = on_alrm;
	al.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGALRM, &al, NULL) == 0);
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid = fork();
	if (pid == 0) {
		usleep(150000);
		write(fds[1], "x", 1);
		_exit(0);
	}
	struct itimerval it = {{0, 0}, {0, 30000}};
	setitimer(ITIMER_REAL, &it, NULL);
	char c = 0;
	CHECK(read(fds[0], &c, 1) == 1 && c == 'x');
	CHECK(waitpid(pid, &status, 0) == pid);
	/* Without SA_RESTART the same read fails with EINTR. */
	al.sa_flags = 0;
	CHECK(sigaction(SIGALRM, &al, NULL) == 0);
	setitimer(ITIMER_REAL, &it, NULL);
	CHECK(read(fds[0], &c, 1) == -1 && errno == EINTR);

	/* vfork + exec; an orphan is reparented to pid 1 (us); sessions and process groups. */
	pid = vfork();
	if (pid == 0) {
		execl("/bin/busybox", "busybox", "true", NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(getpid() == 1);
	pid = fork();
	if (pid == 0) {
		if (fork() == 0) {
			usleep(50000);
			_exit(getppid() == 1 ? 33 : 44);
		}
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	pid_t orphan = wait(&status);
	CHECK(orphan > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 33);
	pid = fork();
	if (pid == 0)
		_exit(setsid() == getpid() && getsid(0) == getpid() && getpgid(0) == getpid() ? 0 : 1);
	CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 0);
	CHECK(setpgid(0, 0) == -1 && errno == EPERM); /* a session leader cannot move */
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	CHECK(setpgid(pid, pid) == 0 && getpgid(pid) == pid);
	CHECK(kill(-pid, SIGTERM) == 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD);

	/* A multithreaded process stops and continues as a whole, a thread blocked in a syscall too. */
	pid = fork();
	if (pid == 0) {
		pthread_t t3;
		pthread_create(&t3, NULL, block_in_read, NULL);
		for (int i = 0; i < 2; i++)
			pthread_create(&t3, NULL, spin_forever, NULL);
		spin_forever(NULL);
	}
	usleep(50000);
	CHECK(kill(pid, SIGSTOP) == 0);
	CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
	CHECK(kill(pid, SIGCONT) == 0);
	CHECK(waitpid(pid, &status, WCONTINUED) == pid && WIFCONTINUED(status));
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* execve from a multithreaded process replaces all threads. */
	pid = fork();
	if (pid == 0) {
		pthread_t t2;
		pthread_create(&t2, NULL, exec_thread, NULL);
		for (;;)
			pause();
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

	printf("kernel ok\n");
	return 0;
}
