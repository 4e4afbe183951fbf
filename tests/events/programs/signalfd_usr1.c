/* signalfd: blocked SIGUSR1 sent by a child is read as a record (and wakes poll and epoll). */
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

int main(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	CHECK(sigprocmask(SIG_BLOCK, &mask, NULL) == 0);
	int fd = signalfd(-1, &mask, SFD_CLOEXEC);
	CHECK(fd >= 0);

	/* Sent to ourselves: readable at once. */
	CHECK(kill(getpid(), SIGUSR2) == 0);
	struct signalfd_siginfo si;
	CHECK(read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2);
	CHECK(si.ssi_pid == (uint32_t)getpid() && si.ssi_uid == getuid());

	/* From a child while we sleep in a blocking read. */
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		usleep(50000);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	CHECK(read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1);
	CHECK(si.ssi_pid == (uint32_t)child && si.ssi_code == SI_USER);
	waitpid(child, NULL, 0);

	/* Wakes poll and epoll; nonblocking read of nothing is EAGAIN. */
	int nb = signalfd(-1, &mask, SFD_NONBLOCK);
	CHECK(read(nb, &si, sizeof(si)) == -1 && errno == EAGAIN);
	child = fork();
	if (child == 0) {
		usleep(50000);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	struct pollfd pfd = {.fd = nb, .events = POLLIN};
	CHECK(poll(&pfd, 1, 5000) == 1 && pfd.revents == POLLIN);
	int ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN}, ev;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, nb, &e) == 0);
	CHECK(epoll_wait(ep, &ev, 1, 0) == 1);
	CHECK(read(nb, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1);
	CHECK(epoll_wait(ep, &ev, 1, 0) == 0);
	waitpid(child, NULL, 0);

	/* Updating the mask of an existing signalfd; bad sizes. */
	sigset_t only2;
	sigemptyset(&only2);
	sigaddset(&only2, SIGUSR2);
	CHECK(signalfd(nb, &only2, 0) == nb);
	CHECK(kill(getpid(), SIGUSR1) == 0);
	CHECK(read(nb, &si, sizeof(si)) == -1 && errno == EAGAIN);
	CHECK(read(fd, &si, 8) == -1 && errno == EINVAL);
	CHECK(syscall(SYS_signalfd4, -1, &mask, 4, 0) == -1 && errno == EINVAL);
	CHECK(read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1);
	/* SIGCHLD is ignored by default, but blocked it stays pending and a signalfd reads it. */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	CHECK(sigprocmask(SIG_BLOCK, &chld, NULL) == 0);
	int cfd = signalfd(-1, &chld, 0);
	child = fork();
	if (child == 0)
		_exit(3);
	CHECK(read(cfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGCHLD);
	CHECK(si.ssi_code == CLD_EXITED && si.ssi_status == 3 && si.ssi_pid == (uint32_t)child);
	waitpid(child, NULL, 0);
	printf("signalfd_usr1 ok\n");
	return 0;
}
