/* Signal handlers, masks, sigaltstack, EINTR vs SA_RESTART, timers, and SIGCHLD. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int got, chld, alrm;
static volatile void *altaddr;

static void on_usr1(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	int x;
	altaddr = &x;
	got = sig + (info->si_pid == getpid() ? 1000 : 0);
}

static void on_chld(int sig) { (void)sig; chld++; }
static void on_alrm(int sig) { (void)sig; alrm++; }

/* Clobbers SSE registers in a handler: the interrupted code's FPU state must come back intact. */
static volatile double sink;
static void on_prof(int sig)
{
	(void)sig;
	double x = 1.5;
	for (int i = 0; i < 100; i++)
		x = x * 1.0001 + 0.25;
	sink = x;
	alrm++;
}

static int fpu_survives_handlers(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_prof;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 1000}, {0, 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
	alrm = 0;
	double a = 0.0, b = 1.0;
	long n = 0;
	while (alrm < 50) {
		a += 0.5;
		b *= 1.0;
		n++;
		if (a != 0.5 * n || b != 1.0)
			return 0;
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	return 1;
}

#define CHECK(c) do { if (!(c)) { printf("FAIL %s line %d\n", #c, __LINE__); return 1; } } while (0)

int main(void)
{
	struct sigaction sa = {0};
	static char stack[65536];
	stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack};
	CHECK(sigaltstack(&ss, NULL) == 0);
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	CHECK(got == SIGUSR1 + 1000);
	CHECK((char *)altaddr >= stack && (char *)altaddr < stack + sizeof stack);

	/* Blocked signals stay pending until unblocked. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	got = 0;
	CHECK(sigprocmask(SIG_BLOCK, &set, &old) == 0);
	raise(SIGUSR1);
	CHECK(got == 0);
	sigset_t pend;
	CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGUSR1));
	CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
	CHECK(got == SIGUSR1 + 1000);

	/* sigtimedwait takes a blocked signal without running the handler. */
	CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
	raise(SIGUSR1);
	struct timespec ts = {1, 0};
	siginfo_t si;
	got = 0;
	CHECK(sigtimedwait(&set, &si, &ts) == SIGUSR1 && got == 0);
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000;
	CHECK(sigtimedwait(&set, &si, &ts) == -1 && errno == EAGAIN);
	CHECK(sigprocmask(SIG_UNBLOCK, &set, NULL) == 0);

	/* An alarm interrupts a sleep without SA_RESTART: EINTR. */
	struct sigaction al = {0};
	al.sa_handler = on_alrm;
	CHECK(sigaction(SIGALRM, &al, NULL) == 0);
	struct itimerval it = {{0, 0}, {0, 50000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	struct timespec longsleep = {5, 0};
	CHECK(nanosleep(&longsleep, &longsleep) == -1 && errno == EINTR && alrm == 1);

	/* SIGCHLD arrives when a child exits; wait reports a signal death. */
	struct sigaction ch = {0};
	ch.sa_handler = on_chld;
	ch.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGCHLD, &ch, NULL) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	usleep(10000);
	CHECK(kill(pid, SIGTERM) == 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	CHECK(chld == 1);

	/* Stop and continue a child. */
	pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	CHECK(kill(pid, SIGSTOP) == 0);
	CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
	CHECK(kill(pid, SIGCONT) == 0);
	CHECK(waitpid(pid, &status, WCONTINUED) == pid && WIFCONTINUED(status));
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* POSIX timer with SIGEV_SIGNAL. */
	timer_t tid;
	struct sigevent sev = {0};
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &tid) == 0);
	struct itimerspec its = {{0, 0}, {0, 20000000}};
	alrm = 0;
	CHECK(timer_settime(tid, 0, &its, NULL) == 0);
	while (!alrm)
		pause();
	CHECK(timer_delete(tid) == 0);
	CHECK(fpu_survives_handlers());
	printf("signals ok\n");
	return 0;
}
