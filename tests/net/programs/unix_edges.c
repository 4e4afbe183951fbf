/* Edge cases: fd passing limits, MSG_CTRUNC, peeking, MSG_WAITALL, backlog, autobind, SO_PASSCRED,
 * shutdown, datagram peers, and a passed-but-never-received pipe end being closed with the socket. */
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static int send_fds(int sock, const int *fds, int n)
{
	char byte = 'R';
	struct iovec iov = {&byte, 1};
	char buf[CMSG_SPACE(sizeof(int) * 8)] __attribute__((aligned(8)));
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	return sendmsg(sock, &msg, 0);
}

static void passing(void)
{
	int sv[2], p[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(pipe(p) == 0);
	/* Three fds in one message, received with room for two (CMSG_SPACE(4) has 4 bytes of padding):
	 * MSG_CTRUNC, the third closed. */
	int three[3] = {p[0], p[1], p[0]};
	CHECK(send_fds(sv[0], three, 3) == 1);
	char byte;
	struct iovec iov = {&byte, 1};
	char small[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8)));
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = small, .msg_controllen = sizeof(small)};
	CHECK(recvmsg(sv[1], &msg, 0) == 1 && (msg.msg_flags & MSG_CTRUNC));
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	CHECK(c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(2 * sizeof(int)));
	int got[2];
	memcpy(got, CMSG_DATA(c), sizeof(got));
	CHECK(fcntl(got[0], F_GETFD) == 0 && fcntl(got[1], F_GETFD) == 0);
	close(got[0]);
	close(got[1]);
	/* Received without a control buffer: the fds are closed and MSG_CTRUNC is set. */
	CHECK(send_fds(sv[0], three, 1) == 1);
	struct msghdr bare = {.msg_iov = &iov, .msg_iovlen = 1};
	CHECK(recvmsg(sv[1], &bare, 0) == 1 && (bare.msg_flags & MSG_CTRUNC));
	/* Bad fds in SCM_RIGHTS are EBADF and nothing is sent. */
	int bad[1] = {9999};
	CHECK(send_fds(sv[0], bad, 1) == -1 && errno == EBADF);
	CHECK(recv(sv[1], &byte, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN);

	/* A write end passed but never received goes away with the socket: the reader sees EOF. */
	int q[2];
	CHECK(pipe(q) == 0);
	CHECK(send_fds(sv[0], &q[1], 1) == 1);
	close(q[1]);
	close(sv[0]);
	close(sv[1]);
	CHECK(read(q[0], &byte, 1) == 0);
	close(p[0]);
	close(p[1]);
	close(q[0]);
}

static void stream_reads(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	char buf[16] = {0};
	CHECK(write(sv[0], "abc", 3) == 3 && write(sv[0], "def", 3) == 3);
	CHECK(recv(sv[1], buf, sizeof(buf), MSG_PEEK) == 6 && memcmp(buf, "abcdef", 6) == 0);
	int n;
	CHECK(ioctl(sv[1], FIONREAD, &n) == 0 && n == 6);
	CHECK(recv(sv[1], buf, 2, 0) == 2 && memcmp(buf, "ab", 2) == 0);
	CHECK(recv(sv[1], buf, sizeof(buf), 0) == 4 && memcmp(buf, "cdef", 4) == 0);
	pid_t child = fork();
	if (child == 0) {
		for (int i = 0; i < 4; i++) {
			usleep(10000);
			CHECK(write(sv[0], "xy", 2) == 2);
		}
		_exit(0);
	}
	CHECK(recv(sv[1], buf, 8, MSG_WAITALL) == 8 && memcmp(buf, "xyxyxyxy", 8) == 0);
	waitpid(child, NULL, 0);
	/* shutdown(SHUT_WR): the peer reads EOF and polls POLLRDHUP; this end can still read. */
	CHECK(shutdown(sv[0], SHUT_WR) == 0);
	struct pollfd pfd = {.fd = sv[1], .events = POLLIN | POLLRDHUP};
	CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLRDHUP));
	CHECK(read(sv[1], buf, 1) == 0);
	CHECK(write(sv[1], "back", 4) == 4 && read(sv[0], buf, 4) == 4);
	CHECK(send(sv[0], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
	CHECK(shutdown(sv[0], 7) == -1 && errno == EINVAL);
	close(sv[0]);
	close(sv[1]);
}

static void listening(void)
{
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	/* Listening needs a name; binding with only the family picks an abstract one. */
	CHECK(listen(l, 1) == -1 && errno == EINVAL);
	CHECK(bind(l, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path)) == 0);
	socklen_t len = sizeof(a);
	CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
	CHECK(len == offsetof(struct sockaddr_un, sun_path) + 6 && a.sun_path[0] == 0);
	CHECK(listen(l, 0) == 0);
	int on, olen = sizeof(on);
	CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &on, (socklen_t *)&olen) == 0 && on == 1);
	CHECK(accept(l, NULL, NULL) == -1 && errno == EAGAIN);
	struct pollfd pfd = {.fd = l, .events = POLLIN};
	CHECK(poll(&pfd, 1, 0) == 0);
	/* Backlog 0 still admits one connection; then a non-blocking connect is EAGAIN. */
	int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(connect(c1, (struct sockaddr *)&a, len) == 0);
	CHECK(connect(c2, (struct sockaddr *)&a, len) == -1 && errno == EAGAIN);
	CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLIN);
	/* Data sent before accept is there afterwards; SO_PASSCRED adds the sender's credentials. */
	CHECK(write(c1, "early", 5) == 5);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(s >= 0 && fcntl(s, F_GETFD) == FD_CLOEXEC);
	CHECK(connect(c1, (struct sockaddr *)&a, len) == -1 && errno == EISCONN);
	on = 1;
	CHECK(setsockopt(s, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0);
	CHECK(write(c1, "late", 4) == 4);
	char buf[16];
	CHECK(read(s, buf, 5) == 5 && memcmp(buf, "early", 5) == 0);
	struct iovec iov = {buf, sizeof(buf)};
	char cbuf[CMSG_SPACE(sizeof(struct ucred))] __attribute__((aligned(8)));
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	CHECK(recvmsg(s, &msg, 0) == 4);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	CHECK(c && c->cmsg_type == SCM_CREDENTIALS);
	struct ucred cred;
	memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	CHECK(cred.pid == getpid() && cred.uid == getuid());
	/* Closing the listener refuses new connections. */
	close(l);
	CHECK(connect(c2, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED);
	close(c1);
	close(c2);
	close(s);
}

static void datagram_peers(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "\0edges-a"};
	struct sockaddr_un b = {.sun_family = AF_UNIX, .sun_path = "\0edges-b"};
	socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 8;
	int sa = socket(AF_UNIX, SOCK_DGRAM, 0), sb = socket(AF_UNIX, SOCK_DGRAM, 0), sc = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(bind(sa, (struct sockaddr *)&a, alen) == 0 && bind(sb, (struct sockaddr *)&b, alen) == 0);
	/* a connected to b: b may send to a, c may not. */
	CHECK(connect(sa, (struct sockaddr *)&b, alen) == 0);
	CHECK(sendto(sc, "c", 1, 0, (struct sockaddr *)&a, alen) == -1 && errno == EPERM);
	CHECK(sendto(sb, "b", 1, 0, (struct sockaddr *)&a, alen) == 1);
	char buf[4];
	CHECK(recv(sa, buf, sizeof(buf), 0) == 1 && buf[0] == 'b');
	CHECK(send(sa, "a", 1, 0) == 1 && recv(sb, buf, sizeof(buf), 0) == 1);
	struct sockaddr_un peer;
	socklen_t plen = sizeof(peer);
	CHECK(getpeername(sa, (struct sockaddr *)&peer, &plen) == 0 && plen == alen);
	CHECK(getpeername(sc, (struct sockaddr *)&peer, &plen) == -1 && errno == ENOTCONN);
	/* AF_UNSPEC forgets the peer. */
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	CHECK(connect(sa, &unspec, sizeof(unspec)) == 0);
	CHECK(send(sa, "a", 1, 0) == -1 && errno == ENOTCONN);
	/* The wrong socket type at a path is EPROTOTYPE; abstract names are looked up by type. */
	int st = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(st, (struct sockaddr *)&a, alen) == -1 && errno == ECONNREFUSED);
	struct sockaddr_un d = {.sun_family = AF_UNIX, .sun_path = "/tmp/edges-dgram"};
	unlink(d.sun_path);
	int sd = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(bind(sd, (struct sockaddr *)&d, sizeof(d)) == 0);
	CHECK(connect(st, (struct sockaddr *)&d, sizeof(d)) == -1 && errno == EPROTOTYPE);
	unlink(d.sun_path);
	close(sd);
	close(sa);
	close(sb);
	close(sc);
	close(st);
}

int main(void)
{
	passing();
	stream_reads();
	listening();
	datagram_peers();
	printf("unix_edges ok\n");
	return 0;
}
