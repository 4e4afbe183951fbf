/* timerfd: a periodic timer's ticks are counted and read; gettime, disarm, poll readiness. */
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	CHECK(t >= 0);
	struct itimerspec its = {.it_value = {0, 20000000}, .it_interval = {0, 20000000}}, cur;
	CHECK(timerfd_settime(t, 0, &its, NULL) == 0);
	uint64_t ticks, total = 0;
	for (int i = 0; i < 3; i++) {
		CHECK(read(t, &ticks, 8) == 8 && ticks >= 1);
		total += ticks;
	}
	CHECK(total >= 3);
	CHECK(timerfd_gettime(t, &cur) == 0 && cur.it_interval.tv_nsec == 20000000);
	usleep(100000);
	CHECK(read(t, &ticks, 8) == 8 && ticks >= 3); /* several expirations in one read */
	struct itimerspec off = {0}, old;
	CHECK(timerfd_settime(t, 0, &off, &old) == 0 && old.it_interval.tv_nsec == 20000000);
	struct pollfd pfd = {.fd = t, .events = POLLIN};
	CHECK(poll(&pfd, 1, 100) == 0);

	/* Absolute one-shot on CLOCK_REALTIME, waited for with poll. */
	int r = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	CHECK(read(r, &ticks, 8) == -1 && errno == EAGAIN);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec abs = {.it_value = {now.tv_sec, now.tv_nsec}};
	abs.it_value.tv_nsec += 30000000;
	if (abs.it_value.tv_nsec >= 1000000000) {
		abs.it_value.tv_sec++;
		abs.it_value.tv_nsec -= 1000000000;
	}
	CHECK(timerfd_settime(r, TFD_TIMER_ABSTIME, &abs, NULL) == 0);
	pfd.fd = r;
	CHECK(poll(&pfd, 1, 5000) == 1 && pfd.revents == POLLIN);
	CHECK(read(r, &ticks, 8) == 8 && ticks == 1);
	/* epoll on a timerfd wakes when it fires. */
	int ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN, .data.fd = t}, ev;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, t, &e) == 0);
	struct itimerspec once = {.it_value = {0, 20000000}};
	CHECK(timerfd_settime(t, 0, &once, NULL) == 0);
	CHECK(epoll_wait(ep, &ev, 1, 5000) == 1 && ev.data.fd == t);
	CHECK(read(t, &ticks, 8) == 8 && ticks == 1);
	CHECK(timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
	CHECK(timerfd_create(12345, 0) == -1 && errno == EINVAL);
	struct itimerspec bad = {.it_value = {0, 2000000000}};
	CHECK(timerfd_settime(r, 0, &bad, NULL) == -1 && errno == EINVAL);
	printf("timerfd_ticks ok\n");
	return 0;
}
