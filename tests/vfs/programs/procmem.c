/* /proc/<pid>/mem: a process reads itself and its child; a sibling and its parent are refused
 * (run as a plain user without CAP_SYS_PTRACE, like Linux with Yama ptrace_scope 1). */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static volatile uint64_t secret = 0x5ec2e75ec2e7ULL;

static int open_mem(pid_t pid) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	return open(path, O_RDONLY);
}

static uint64_t peek(int fd) {
	uint64_t got = 0;
	CHECK(pread(fd, &got, sizeof got, (off_t)(uintptr_t)&secret) == sizeof got);
	return got;
}

int main(void) {
	int self = open("/proc/self/mem", O_RDONLY);
	CHECK(self >= 0);
	CHECK(peek(self) == 0x5ec2e75ec2e7ULL);
	uint64_t zero = 0;
	CHECK(pread(self, &zero, sizeof zero, 0) < 0 && errno == EIO);

	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		secret = 0xc41dULL; /* the child's copy differs from the parent's */
		CHECK(write(ready[1], "x", 1) == 1);
		pause();
		_exit(0);
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	int fd = open_mem(child);
	CHECK(fd >= 0);
	CHECK(peek(fd) == 0xc41dULL);
	close(fd);

	pid_t sibling = fork();
	CHECK(sibling >= 0);
	if (sibling == 0) {
		CHECK(open_mem(child) < 0 && errno == EACCES);
		CHECK(open_mem(getppid()) < 0 && errno == EACCES);
		CHECK(open_mem(1) < 0 || getppid() == 1);
		int mine = open("/proc/self/mem", O_RDONLY);
		CHECK(mine >= 0 && peek(mine) == 0x5ec2e75ec2e7ULL);
		_exit(0);
	}
	int status;
	CHECK(waitpid(sibling, &status, 0) == sibling);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	printf("procmem ok\n");
	return 0;
}
