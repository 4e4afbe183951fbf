/* Message boundaries: datagrams (named, unnamed, truncated) and seqpacket records, plus EOF. */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
	/* Datagram socketpair: each send is one recv, truncation drops the rest. */
	int d[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0);
	CHECK(send(d[0], "one", 3, 0) == 3);
	CHECK(send(d[0], "two!", 4, 0) == 4);
	CHECK(send(d[0], "", 0, 0) == 0);
	CHECK(send(d[0], "truncated", 9, 0) == 9);
	char buf[64];
	CHECK(recv(d[1], buf, sizeof(buf), 0) == 3);
	CHECK(recv(d[1], buf, sizeof(buf), MSG_PEEK) == 4);
	CHECK(recv(d[1], buf, sizeof(buf), 0) == 4 && memcmp(buf, "two!", 4) == 0);
	CHECK(recv(d[1], buf, sizeof(buf), 0) == 0);
	struct iovec iov = {buf, 5};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	CHECK(recvmsg(d[1], &msg, 0) == 5 && (msg.msg_flags & MSG_TRUNC));
	CHECK(recv(d[1], buf, sizeof(buf), MSG_DONTWAIT) == -1 && errno == EAGAIN);

	/* sendmmsg/recvmmsg: a batch of datagrams, each length written back. */
	struct mmsghdr out[3], in[3];
	struct iovec oiov[3], iiov[3];
	char ibuf[3][8];
	const char *words[3] = {"a", "bb", "ccc"};
	for (int i = 0; i < 3; i++) {
		oiov[i] = (struct iovec){(void *)words[i], strlen(words[i])};
		iiov[i] = (struct iovec){ibuf[i], sizeof(ibuf[i])};
		out[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &oiov[i], .msg_iovlen = 1}};
		in[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iiov[i], .msg_iovlen = 1}};
	}
	CHECK(sendmmsg(d[0], out, 3, 0) == 3 && out[2].msg_len == 3);
	CHECK(recvmmsg(d[1], in, 3, MSG_WAITFORONE, NULL) == 3);
	CHECK(in[0].msg_len == 1 && in[1].msg_len == 2 && in[2].msg_len == 3 && memcmp(ibuf[2], "ccc", 3) == 0);

	/* Named datagram sockets: sendto a path, recvfrom reports the sender's name. */
	struct sockaddr_un a = {.sun_family = AF_UNIX}, b = {.sun_family = AF_UNIX}, from;
	strcpy(a.sun_path, "/tmp/dgram-a");
	strcpy(b.sun_path, "/tmp/dgram-b");
	unlink(a.sun_path);
	unlink(b.sun_path);
	int sa = socket(AF_UNIX, SOCK_DGRAM, 0), sb = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(bind(sa, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(bind(sb, (struct sockaddr *)&b, sizeof(b)) == 0);
	CHECK(sendto(sa, "hi b", 4, 0, (struct sockaddr *)&b, sizeof(b)) == 4);
	socklen_t flen = sizeof(from);
	CHECK(recvfrom(sb, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) == 4);
	CHECK(flen == offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1);
	CHECK(strcmp(from.sun_path, a.sun_path) == 0);
	CHECK(sendto(sb, "x", 1, 0, (struct sockaddr *)&from, flen) == 1);
	CHECK(recv(sa, buf, sizeof(buf), 0) == 1);
	struct sockaddr_un nowhere = {.sun_family = AF_UNIX, .sun_path = "/tmp/no-such-socket"};
	CHECK(sendto(sa, "x", 1, 0, (struct sockaddr *)&nowhere, sizeof(nowhere)) == -1 && errno == ENOENT);
	CHECK(send(sa, "x", 1, 0) == -1 && errno == ENOTCONN);
	unlink(a.sun_path);
	unlink(b.sun_path);

	/* Seqpacket: records keep their boundaries; the peer's close is EOF (0). */
	int s[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s) == 0);
	CHECK(write(s[0], "abc", 3) == 3);
	CHECK(write(s[0], "defgh", 5) == 5);
	CHECK(read(s[1], buf, sizeof(buf)) == 3 && memcmp(buf, "abc", 3) == 0);
	CHECK(read(s[1], buf, 2) == 2 && memcmp(buf, "de", 2) == 0);
	CHECK(write(s[0], "z", 1) == 1);
	CHECK(read(s[1], buf, sizeof(buf)) == 1 && buf[0] == 'z');
	CHECK(shutdown(s[0], SHUT_WR) == 0);
	CHECK(read(s[1], buf, sizeof(buf)) == 0);
	close(s[0]);
	CHECK(send(s[1], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);

	/* Families the Sentry has no stack for are not served; unknown types are refused. */
	CHECK(NATIVE || (socket(AF_APPLETALK, SOCK_DGRAM, 0) == -1 && errno == EAFNOSUPPORT));
	CHECK(socketpair(AF_INET, SOCK_STREAM, 0, s) == -1 && errno == EOPNOTSUPP);
	CHECK(socket(AF_UNIX, 77, 0) == -1);
	printf("unix_records ok\n");
	return 0;
}
