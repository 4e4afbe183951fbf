/* Pseudo-terminals: openpty's path (posix_openpt, grantpt, unlockpt, ptsname), TIOCGPTPEER, a cooked line
 * with echo and ONLCR, raw mode, window size, ttyname, and ^C reaching the foreground group. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "check.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static ssize_t read_some(int fd, char *buf, size_t n) {
	ssize_t got = read(fd, buf, n - 1);
	if (got >= 0)
		buf[got] = 0;
	return got;
}

int main(void) {
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK(master >= 0);
	CHECK(grantpt(master) == 0);
	char *name = ptsname(master);
	CHECK(name != NULL && strncmp(name, "/dev/pts/", 9) == 0);
	CHECK(open(name, O_RDWR) < 0 && errno == EIO); /* still locked */
	CHECK(unlockpt(master) == 0);
	int slave = open(name, O_RDWR | O_NOCTTY);
	CHECK(slave >= 0);
	CHECK(isatty(slave) && strcmp(ttyname(slave), name) == 0);
	int peer = ioctl(master, TIOCGPTPEER, O_RDWR);
	CHECK(peer >= 0 && isatty(peer));

	char buf[256];
	CHECK(write(master, "hello\r", 6) == 6);
	CHECK(read_some(slave, buf, sizeof buf) == 6 && strcmp(buf, "hello\n") == 0);
	CHECK(read_some(master, buf, sizeof buf) > 0 && strcmp(buf, "hello\r\n") == 0); /* the echo */
	CHECK(write(slave, "out\n", 4) == 4);
	CHECK(read_some(master, buf, sizeof buf) == 5 && strcmp(buf, "out\r\n") == 0);

	struct termios t;
	CHECK(tcgetattr(slave, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO));
	cfmakeraw(&t);
	CHECK(tcsetattr(slave, TCSANOW, &t) == 0);
	CHECK(write(master, "ab", 2) == 2);
	CHECK(read_some(slave, buf, sizeof buf) == 2 && strcmp(buf, "ab") == 0);

	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	CHECK(ioctl(master, TIOCSWINSZ, &ws) == 0);
	struct winsize got = {0};
	CHECK(ioctl(slave, TIOCGWINSZ, &got) == 0 && got.ws_row == 24 && got.ws_col == 80);

	/* A child in its own session takes the pty as controlling terminal; ^C interrupts it. */
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		CHECK(setsid() > 0);
		int s = open(name, O_RDWR);
		CHECK(s >= 0 && ioctl(s, TIOCSCTTY, 0) == 0);
		struct termios c;
		CHECK(tcgetattr(s, &c) == 0);
		c.c_lflag |= ISIG | ICANON;
		CHECK(tcsetattr(s, TCSANOW, &c) == 0);
		CHECK(tcgetpgrp(s) == getpid());
		int tty = open("/dev/tty", O_RDWR); /* the controlling terminal: this pty */
		CHECK(tty >= 0 && isatty(tty));
		CHECK(write(tty, "R", 1) == 1);
		pause();
		_exit(3);
	}
	CHECK(read(master, buf, 1) == 1 && buf[0] == 'R');
	CHECK(write(master, "\x03", 1) == 1);
	int status;
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);

	close(slave);
	close(peer);
	printf("pty ok\n");
	return 0;
}
