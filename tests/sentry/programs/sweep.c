/*
 * Call every syscall number 0..450 with hostile arguments, each in a child
 * process (a call may block or kill the caller), and report how each child
 * ended. Run only inside the sandbox, as pid 1 (so kill(-1, ...) spares it).
 */
#include <signal.h>
#include <string.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

static char buf[8192];

static long patterns[][6] = {
	{-1, -1, -1, -1, -1, -1},
	{0, 0, 0, 0, 0, 0},
	{0x7fffffffffffL, 0x7fffffff, 0xffffffffL, 0x1000, 0x10, 1},
	{(long)0xffff800000000000UL, 4096, -4096, 0x7fffffff00000000L, 3, 0x8000000000000000L},
	{1, 0x400000, 1 << 30, 0x41414141, -2, 0xdeadbeef},
	{0, 0, 0, 0, 0, 0}, /* filled in main: a writable buffer with absurd lengths */
	{0, 0, 0, 0, 0, 0}, /* filled in main: read-only text where output is expected */
	{0, 0, 0, 0, 0, 0}, /* filled in main: small valid values */
};

int main(int argc, char **argv)
{
	int first = argc > 1 ? atoi(argv[1]) : 0, last = argc > 2 ? atoi(argv[2]) : 450;
	int hung = 0;
	long w = (long)buf, t = (long)main;
	long fill[3][6] = {
		{w, 1L << 40, w + 4096, -1, w, 1L << 62},
		{t, t, 4096, t, 16, t},
		{2, w, 64, 0, w + 64, 8},
	};
	memcpy(patterns[5], fill, sizeof fill);
	for (int nr = first; nr <= last; nr++) {
		if (nr == SYS_vfork || nr == SYS_kill || nr == SYS_tkill || nr == SYS_tgkill)
			continue; /* would stop or kill the sweeper itself, not test the Sentry */
		pid_t pid = fork();
		if (pid < 0) {
			printf("fork failed at %d\n", nr);
			return 2;
		}
		if (pid == 0) {
			alarm(2);
			for (unsigned p = 0; p < sizeof patterns / sizeof patterns[0]; p++)
				syscall(nr, patterns[p][0], patterns[p][1], patterns[p][2], patterns[p][3], patterns[p][4],
					patterns[p][5]);
			_exit(0);
		}
		int status = 0;
		struct timespec tick = {0, 5000000};
		int waited = 0;
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (++waited > 1000) { /* 5 s: the alarm did not end it */
				printf("hung %d\n", nr);
				hung++;
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			nanosleep(&tick, NULL);
		}
	}
	/* Reap anything the calls created (clone/fork children). */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	printf("sweep done hung=%d\n", hung);
	return hung != 0;
}
