/* Fork 50 children, each exiting with its index; reap them all and check every status. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	int seen[50] = {0};
	pid_t pids[50];
	for (int i = 0; i < 50; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0)
			_exit(i);
		pids[i] = pid;
	}
	int reaped = 0, status;
	pid_t pid;
	while ((pid = wait(&status)) > 0) {
		int known = 0;
		for (int i = 0; i < 50; i++)
			if (pids[i] == pid) {
				known = 1;
				if (WIFEXITED(status) && WEXITSTATUS(status) == i)
					seen[i]++;
				else
					printf("child %d (pid %d): status %#x\n", i, pid, status);
			}
		if (!known)
			printf("unknown pid %d\n", pid);
		reaped++;
	}
	int ok = reaped == 50;
	for (int i = 0; i < 50; i++)
		ok &= seen[i] == 1;
	printf("reaped=%d ok=%d\n", reaped, ok);
	return ok ? 0 : 1;
}
