/* Loopback TCP and UDP from C: a 4 MiB echo through one blocking write and an edge-triggered epoll
 * reader, a non-blocking connect refused (EINPROGRESS, then SO_ERROR), a dual-stack listener taking an
 * IPv4 client, sendmmsg/recvmmsg datagrams with their senders, and EADDRINUSE. Ephemeral ports only.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define BULK (4 << 20)

static struct sockaddr_in loopback(unsigned short port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int bound(int type, struct sockaddr_in *a)
{
	int fd = socket(AF_INET, type, 0);
	socklen_t len = sizeof(*a);
	*a = loopback(0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)a, sizeof(*a)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)a, &len) == 0 && len == sizeof(*a) && a->sin_port != 0);
	return fd;
}

static unsigned long sum(const unsigned char *p, size_t n, unsigned long acc)
{
	for (size_t i = 0; i < n; i++)
		acc = acc * 31 + p[i];
	return acc;
}

static void echo(void)
{
	static unsigned char out[BULK], back[BULK];
	for (int i = 0; i < BULK; i++)
		out[i] = (unsigned char)(i * 7 + i / 4096);
	struct sockaddr_in a;
	int l = bound(SOCK_STREAM, &a);
	CHECK(listen(l, 8) == 0);
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
		CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0);
		CHECK(write(c, out, BULK) == BULK); /* a blocking write sends it all */
		CHECK(shutdown(c, SHUT_WR) == 0);
		size_t got = 0;
		ssize_t n;
		while ((n = read(c, back + got, BULK - got)) > 0)
			got += n;
		CHECK(n == 0 && got == BULK && memcmp(out, back, BULK) == 0);
		_exit(0);
	}
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int s = accept4(l, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	CHECK(s >= 0 && plen == sizeof(peer) && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = s};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
	size_t got = 0;
	int eof = 0;
	while (!eof) {
		CHECK(epoll_wait(ep, &ev, 1, -1) == 1);
		for (;;) { /* edge-triggered: drain until EAGAIN */
			ssize_t n = read(s, back + got, BULK - got);
			if (n > 0) {
				got += n;
				continue;
			}
			if (n == 0)
				eof = 1;
			else
				CHECK(errno == EAGAIN);
			break;
		}
	}
	CHECK(got == BULK && sum(back, got, 0) == sum(out, BULK, 0));
	CHECK(fcntl(s, F_SETFL, 0) == 0);
	CHECK(write(s, back, BULK) == BULK);
	close(s);
	int status;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ep);
	close(l);
}

static void refused(void)
{
	struct sockaddr_in a;
	close(bound(SOCK_STREAM, &a)); /* a port nobody listens on now */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) == -1 && errno == EINPROGRESS);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLOUT, .data.fd = c};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0);
	CHECK(epoll_wait(ep, &ev, 1, 5000) == 1 && ev.events & EPOLLERR);
	int err = 0;
	socklen_t len = sizeof(err);
	CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED);
	close(ep);
	close(c);
}

static void dual_stack(void)
{
	int l = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
	socklen_t len = sizeof(a6);
	CHECK(bind(l, (struct sockaddr *)&a6, sizeof(a6)) == 0 && listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&a6, &len) == 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(ntohs(a6.sin6_port));
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0);
	struct sockaddr_in6 peer;
	len = sizeof(peer);
	int s = accept(l, (struct sockaddr *)&peer, &len);
	char text[INET6_ADDRSTRLEN];
	CHECK(s >= 0 && len == sizeof(peer) && peer.sin6_family == AF_INET6);
	CHECK(strcmp(inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof(text)), "::ffff:127.0.0.1") == 0);
	/* Its port is already taken for IPv4 too. */
	int v4 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(bind(v4, (struct sockaddr *)&a, sizeof(a)) == -1 && errno == EADDRINUSE);
	close(v4);
	close(s);
	close(c);
	close(l);
}

static void datagrams(void)
{
	struct sockaddr_in ra, sa;
	int r = bound(SOCK_DGRAM, &ra), s = bound(SOCK_DGRAM, &sa);
	char *words[] = {"one", "three", "fifteen"};
	struct iovec iov[3];
	struct mmsghdr out[3];
	memset(out, 0, sizeof(out));
	for (int i = 0; i < 3; i++) {
		iov[i] = (struct iovec){words[i], strlen(words[i])};
		out[i].msg_hdr = (struct msghdr){.msg_name = &ra, .msg_namelen = sizeof(ra), .msg_iov = &iov[i],
						 .msg_iovlen = 1};
	}
	CHECK(sendmmsg(s, out, 3, 0) == 3 && out[2].msg_len == 7);
	char bufs[3][16];
	struct iovec riov[3];
	struct sockaddr_in from[3];
	struct mmsghdr in[3];
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 3; i++) {
		riov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
		in[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof(from[i]),
						.msg_iov = &riov[i], .msg_iovlen = 1};
	}
	CHECK(recvmmsg(r, in, 3, MSG_WAITFORONE, NULL) == 3);
	for (int i = 0; i < 3; i++) {
		CHECK(in[i].msg_len == strlen(words[i]) && memcmp(bufs[i], words[i], in[i].msg_len) == 0);
		CHECK(in[i].msg_hdr.msg_namelen == sizeof(sa) && from[i].sin_port == sa.sin_port);
	}
	close(r);
	close(s);
}

int main(void)
{
	echo();
	refused();
	dual_stack();
	datagrams();
	printf("inet_stream ok\n");
	return 0;
}
