/* File locks between processes: POSIX record locks (conflicts, F_GETLK, blocking, the close rule),
 * flock (per description, inherited over fork), OFD locks (per description within one process). */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int setlk(int fd, int cmd, short type, off_t start, off_t len) {
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, cmd, &fl);
}

static void nap(void) {
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static int child_ok(pid_t pid) {
	int status;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
	const char *path = argc > 1 ? argv[1] : "/lockfile";
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(setlk(fd, F_SETLK, F_WRLCK, 0, 100) == 0);
	pid_t me = getpid();

	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		int mine = open(path, O_RDWR);
		CHECK(mine >= 0);
		CHECK(setlk(mine, F_SETLK, F_WRLCK, 50, 10) < 0 && (errno == EAGAIN || errno == EACCES));
		struct flock q = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 1};
		CHECK(fcntl(mine, F_GETLK, &q) == 0);
		CHECK(q.l_type == F_WRLCK && q.l_pid == me && q.l_start == 0 && q.l_len == 100);
		CHECK(setlk(mine, F_SETLK, F_RDLCK, 100, 100) == 0);
		/* Blocks until the parent closes some fd of the file (the POSIX close rule). */
		CHECK(setlk(mine, F_SETLKW, F_WRLCK, 0, 10) == 0);
		_exit(0);
	}
	nap();
	struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 150, .l_len = 1};
	CHECK(fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_RDLCK && q.l_pid == child);
	int other = open(path, O_RDONLY);
	CHECK(other >= 0);
	close(other); /* drops every POSIX lock this process holds on the file */
	CHECK(child_ok(child));

	/* flock: the description owns it; a fork shares it, a fresh open does not. */
	CHECK(flock(fd, LOCK_EX) == 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		int mine = open(path, O_RDONLY);
		CHECK(flock(mine, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK);
		CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0);
		CHECK(flock(mine, LOCK_SH) == 0); /* waits for the parent's LOCK_UN */
		_exit(0);
	}
	nap();
	CHECK(flock(fd, LOCK_UN) == 0);
	CHECK(child_ok(child));

	/* OFD locks conflict between two descriptions of one process. */
	int a = open(path, O_RDWR), b = open(path, O_RDWR);
	CHECK(setlk(a, F_OFD_SETLK, F_WRLCK, 0, 0) == 0);
	CHECK(setlk(b, F_OFD_SETLK, F_RDLCK, 5, 1) < 0 && errno == EAGAIN);
	close(a);
	CHECK(setlk(b, F_OFD_SETLK, F_RDLCK, 5, 1) == 0);
	CHECK(setlk(b, F_SETLK, F_WRLCK, 0, 1) == 0);
	struct flock bad = {.l_type = 7};
	CHECK(fcntl(b, F_SETLK, &bad) < 0 && errno == EINVAL);
	printf("locks ok\n");
	return 0;
}
