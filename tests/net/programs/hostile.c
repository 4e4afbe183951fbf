/* Socket and event-file syscalls with hostile arguments: every call must return (an errno is fine).
 *
 * Arguments are drawn (fixed seed) from bad pointers, scratch buffers, huge and negative lengths,
 * garbage flags and fds of every kind. A periodic SIGALRM without SA_RESTART interrupts any call
 * that blocks. Loopback TCP/UDP sockets are among the fds. Prints "hostile done N" after N calls;
 * the test then checks the Sentry logged no bug.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

static uint64_t seed = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static char scratch[8192] __attribute__((aligned(64)));
static int fds[24];
static int nfds;

static uint64_t pick_ptr(void)
{
	static const uint64_t bad[] = {0, 1, 0xfff, 0x7ffffffff000ULL, 0x800000000000ULL, 0xffff800000000000ULL,
				       0x8000000000000000ULL, ~0ULL};
	switch (rnd() % 4) {
	case 0:
		return bad[rnd() % (sizeof(bad) / sizeof(bad[0]))];
	case 1:
		return (uint64_t)scratch + sizeof(scratch) - (rnd() % 32); /* runs off the end */
	default:
		return (uint64_t)scratch + (rnd() % 64) * 8;
	}
}

static uint64_t pick_len(void)
{
	static const uint64_t lens[] = {0, 1, 2, 3, 8, 16, 28, 56, 110, 111, 128, 4096, 0x7fffffff, 0x80000000ULL,
					0xffffffffULL, 1ULL << 40, 1ULL << 63, ~0ULL};
	return lens[rnd() % (sizeof(lens) / sizeof(lens[0]))];
}

static uint64_t pick_int(void)
{
	switch (rnd() % 4) {
	case 0:
		return rnd();
	case 1:
		return (uint64_t)(int64_t)(int32_t)rnd();
	case 2:
		return rnd() % 64;
	default:
		return (uint64_t)-(int64_t)(rnd() % 4);
	}
}

static uint64_t pick_fd(void)
{
	if (rnd() % 8 == 0)
		return pick_int();
	return fds[rnd() % nfds];
}

static uint64_t pick_any(void)
{
	switch (rnd() % 4) {
	case 0:
		return pick_ptr();
	case 1:
		return pick_len();
	case 2:
		return pick_fd();
	default:
		return pick_int();
	}
}

static void on_alarm(int sig)
{
	(void)sig;
}

int main(void)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	signal(SIGPIPE, SIG_IGN);
	struct itimerval it = {{0, 20000}, {0, 20000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);

	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	fds[nfds++] = sv[0];
	fds[nfds++] = sv[1];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) == 0);
	fds[nfds++] = sv[0];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) == 0);
	fds[nfds++] = sv[0];
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "\0hostile"};
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 2) == 0);
	fds[nfds++] = l;
	fds[nfds++] = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	fds[nfds++] = epoll_create1(0);
	fds[nfds++] = eventfd(1, EFD_NONBLOCK);
	fds[nfds++] = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	sigset_t m;
	sigfillset(&m);
	fds[nfds++] = signalfd(-1, &m, SFD_NONBLOCK);
	fds[nfds++] = inotify_init1(IN_NONBLOCK);
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	fds[nfds++] = p[0];
	fds[nfds++] = p[1];
	/* Loopback TCP and UDP (the in-Sentry stack of --network=none): a listener, a connection, UDP, v6. */
	int tl = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t inlen = sizeof(in);
	CHECK(bind(tl, (struct sockaddr *)&in, sizeof(in)) == 0 && listen(tl, 4) == 0);
	CHECK(getsockname(tl, (struct sockaddr *)&in, &inlen) == 0);
	int tc = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(tc, (struct sockaddr *)&in, sizeof(in)) == 0);
	fcntl(tc, F_SETFL, O_NONBLOCK);
	fds[nfds++] = tl;
	fds[nfds++] = tc;
	fds[nfds++] = accept4(tl, NULL, NULL, SOCK_NONBLOCK);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	CHECK(bind(u, (struct sockaddr *)&in, sizeof(in)) == 0 || errno == EADDRINUSE);
	fds[nfds++] = u;
	fds[nfds++] = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	fds[nfds++] = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	for (int i = 0; i < nfds; i++)
		CHECK(fds[i] >= 0);

	static const long calls[] = {
		SYS_socket, SYS_socketpair, SYS_bind, SYS_listen, SYS_accept, SYS_accept4, SYS_connect,
		SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_shutdown, SYS_getsockname,
		SYS_getpeername, SYS_setsockopt, SYS_getsockopt, SYS_epoll_create1, SYS_epoll_ctl,
		SYS_epoll_wait, SYS_epoll_pwait, SYS_eventfd2, SYS_timerfd_create, SYS_timerfd_settime,
		SYS_timerfd_gettime, SYS_signalfd4, SYS_inotify_init1, SYS_inotify_add_watch,
		SYS_inotify_rm_watch, SYS_read, SYS_write, SYS_ioctl, SYS_sendmmsg, SYS_recvmmsg,
	};
	const int ncalls = sizeof(calls) / sizeof(calls[0]);
	int done = 0;
	for (int i = 0; i < 20000; i++) {
		long nr = calls[rnd() % ncalls];
		uint64_t arg[6];
		arg[0] = pick_fd();
		for (int j = 1; j < 6; j++)
			arg[j] = pick_any();
		if (nr == SYS_socket || nr == SYS_socketpair) {
			static const int families[] = {AF_UNIX, AF_UNIX, AF_INET, AF_INET6};
			arg[0] = rnd() % 4 ? families[rnd() % 4] : pick_int();
		}
		if ((nr == SYS_setsockopt || nr == SYS_getsockopt) && rnd() % 2) {
			static const int levels[] = {SOL_SOCKET, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6};
			arg[1] = levels[rnd() % 5];
			arg[2] = rnd() % 72;
		}
		if (nr == SYS_write || nr == SYS_read || nr == SYS_ioctl)
			arg[2] = rnd() % 2 ? pick_len() : pick_ptr();
		if (nr == SYS_ioctl && rnd() % 2) {
			static const long cmds[] = {FIONREAD, 0x8910, 0x8912, 0x8913, 0x8915, 0x891b, 0x8921, 0x8927, 0x8933};
			arg[1] = cmds[rnd() % 9];
		}
		/* Keep the stdio and our own fds: closing happens only through recvmsg/accept results. */
		syscall(nr, arg[0], arg[1], arg[2], arg[3], arg[4], arg[5]);
		done++;
	}
	it.it_value.tv_usec = it.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	printf("hostile done %d\n", done);
	return 0;
}
