/* The FPU control state (rounding mode) is inherited by fork and reset by exec. */
#include <fenv.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--exec") == 0)
		return fegetround() == FE_TONEAREST ? 0 : 1;
	int bad_fork = 0, bad_exec = 0, status;
	fesetround(FE_UPWARD);
	for (int i = 0; i < 40; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(fegetround() == FE_UPWARD ? 0 : 1);
		waitpid(pid, &status, 0);
		bad_fork += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "fpufork", "--exec", NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	bad_exec = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	printf("bad_fork=%d bad_exec=%d\n", bad_fork, bad_exec);
	return bad_fork || bad_exec;
}
