/* socketpair: stream bytes both ways, SCM_RIGHTS passing a pipe's read end, SO_PEERCRED, EOF on close. */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static void send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {&byte, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	CHECK(sendmsg(sock, &msg, 0) == 1);
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {&byte, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	CHECK(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) == 1 && byte == 'F');
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	CHECK(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS);
	CHECK(c->cmsg_len == CMSG_LEN(sizeof(int)));
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
	return fd;
}

int main(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[0], "ping", 4) == 4);
	char buf[64] = {0};
	CHECK(read(sv[1], buf, sizeof(buf)) == 4 && memcmp(buf, "ping", 4) == 0);

	struct ucred cred;
	socklen_t len = sizeof(cred);
	CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0);
	CHECK(len == sizeof(cred) && cred.pid == getpid() && cred.uid == getuid() && cred.gid == getgid());
	int type;
	len = sizeof(type);
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM);

	/* A child receives the read end of a pipe over the socket and reads what the parent writes. */
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		close(sv[0]);
		close(p[0]);
		close(p[1]);
		int fd = recv_fd(sv[1]);
		char got[32] = {0};
		CHECK(read(fd, got, sizeof(got)) == 11 && memcmp(got, "via the fd\n", 11) == 0);
		struct ucred c2;
		socklen_t l2 = sizeof(c2);
		CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &c2, &l2) == 0 && c2.pid == getppid());
		CHECK(write(sv[1], "ok", 2) == 2);
		_exit(0);
	}
	close(sv[1]);
	send_fd(sv[0], p[0]);
	close(p[0]);
	CHECK(write(p[1], "via the fd\n", 11) == 11);
	CHECK(read(sv[0], buf, 2) == 2 && memcmp(buf, "ok", 2) == 0);
	int status;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The child's end is closed: EOF, and writing is EPIPE (SIGPIPE suppressed). */
	CHECK(read(sv[0], buf, sizeof(buf)) == 0);
	CHECK(send(sv[0], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
	printf("unix_pair ok\n");
	return 0;
}
