/* epoll level-, edge-triggered and one-shot reporting, on a pipe and on a unix socket, plus eventfd. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

static int wait_n(int ep, struct epoll_event *ev)
{
	return epoll_wait(ep, ev, 8, 0);
}

/* rd becomes readable when one byte is written to wr. */
static void modes(int rd, int wr)
{
	struct epoll_event ev[8], e = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
	char c;

	int lt = epoll_create1(EPOLL_CLOEXEC);
	CHECK(lt >= 0);
	CHECK(epoll_ctl(lt, EPOLL_CTL_ADD, rd, &e) == 0);
	CHECK(epoll_ctl(lt, EPOLL_CTL_ADD, rd, &e) == -1 && errno == EEXIST);
	CHECK(wait_n(lt, ev) == 0);
	CHECK(write(wr, "a", 1) == 1);
	/* Level-triggered: reported while readable. */
	CHECK(wait_n(lt, ev) == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == 0x1122334455667788ULL);
	CHECK(wait_n(lt, ev) == 1);
	CHECK(read(rd, &c, 1) == 1);
	CHECK(wait_n(lt, ev) == 0);

	/* Edge-triggered: once per new arrival. */
	int et = epoll_create1(0);
	e.events = EPOLLIN | EPOLLET;
	CHECK(epoll_ctl(et, EPOLL_CTL_ADD, rd, &e) == 0);
	CHECK(wait_n(et, ev) == 0);
	CHECK(write(wr, "b", 1) == 1);
	CHECK(wait_n(et, ev) == 1);
	CHECK(wait_n(et, ev) == 0);
	CHECK(write(wr, "c", 1) == 1);
	CHECK(epoll_wait(et, ev, 8, 1000) == 1);
	CHECK(wait_n(et, ev) == 0);
	CHECK(read(rd, &c, 1) == 1 && read(rd, &c, 1) == 1);

	/* One-shot: reported once, then disabled until EPOLL_CTL_MOD re-arms it. */
	int os = epoll_create1(0);
	e.events = EPOLLIN | EPOLLONESHOT;
	CHECK(epoll_ctl(os, EPOLL_CTL_ADD, rd, &e) == 0);
	CHECK(write(wr, "d", 1) == 1);
	CHECK(wait_n(os, ev) == 1);
	CHECK(wait_n(os, ev) == 0);
	CHECK(epoll_ctl(os, EPOLL_CTL_MOD, rd, &e) == 0);
	CHECK(wait_n(os, ev) == 1);
	CHECK(read(rd, &c, 1) == 1 && c == 'd');
	CHECK(epoll_ctl(os, EPOLL_CTL_DEL, rd, NULL) == 0);
	CHECK(epoll_ctl(os, EPOLL_CTL_DEL, rd, NULL) == -1 && errno == ENOENT);
	close(lt);
	close(et);
	close(os);
}

int main(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	modes(p[0], p[1]);
	int s[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
	modes(s[0], s[1]);

	/* A blocking epoll_wait wakes when a child writes to the socket; EPOLLHUP when it closes. */
	int ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = s[0]}, ev[4];
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s[0], &e) == 0);
	pid_t child = fork();
	if (child == 0) {
		usleep(50000);
		CHECK(write(s[1], "x", 1) == 1);
		_exit(0);
	}
	close(s[1]);
	CHECK(epoll_wait(ep, ev, 4, 5000) == 1 && ev[0].data.fd == s[0] && (ev[0].events & EPOLLIN));
	char c;
	CHECK(read(s[0], &c, 1) == 1 && c == 'x');
	CHECK(epoll_wait(ep, ev, 4, 5000) == 1 && (ev[0].events & (EPOLLRDHUP | EPOLLHUP)));
	CHECK(read(s[0], &c, 1) == 0);

	/* eventfd: counter mode sums, semaphore mode counts down by one. */
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 3;
	CHECK(write(efd, &v, 8) == 8 && write(efd, &v, 8) == 8);
	CHECK(read(efd, &v, 8) == 8 && v == 6);
	CHECK(read(efd, &v, 8) == -1 && errno == EAGAIN);
	int sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
	CHECK(read(sem, &v, 8) == 8 && v == 1);
	CHECK(read(sem, &v, 8) == 8 && v == 1);
	CHECK(read(sem, &v, 8) == -1 && errno == EAGAIN);
	e.events = EPOLLIN;
	e.data.fd = sem;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sem, &e) == 0);
	v = 1;
	CHECK(write(sem, &v, 8) == 8);
	CHECK(epoll_wait(ep, ev, 4, 1000) >= 1);
	printf("epoll_modes ok\n");
	return 0;
}
