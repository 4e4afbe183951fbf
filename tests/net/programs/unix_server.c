/* A stream echo server and client: bind/listen/accept/connect on a path, then on an abstract name. */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static socklen_t make_addr(struct sockaddr_un *a, const char *name, int abstract)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (abstract) {
		memcpy(a->sun_path + 1, name, strlen(name));
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	strcpy(a->sun_path, name);
	return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

static void echo_round(const char *name, int abstract)
{
	struct sockaddr_un addr;
	socklen_t alen = make_addr(&addr, name, abstract);
	if (!abstract)
		unlink(name);
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(srv >= 0);
	CHECK(bind(srv, (struct sockaddr *)&addr, alen) == 0);
	/* Bound already: a path that exists wins (Linux makes the inode first), an abstract name is EINVAL. */
	CHECK(bind(srv, (struct sockaddr *)&addr, alen) == -1 && errno == (abstract ? EINVAL : EADDRINUSE));
	int again = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(again, (struct sockaddr *)&addr, alen) == -1 && errno == EADDRINUSE);
	close(again);
	if (!abstract) {
		struct stat st;
		CHECK(stat(name, &st) == 0 && S_ISSOCK(st.st_mode));
	}
	CHECK(listen(srv, 5) == 0);
	struct sockaddr_un got;
	socklen_t glen = sizeof(got);
	CHECK(getsockname(srv, (struct sockaddr *)&got, &glen) == 0 && glen == alen);
	CHECK(memcmp(&got, &addr, alen) == 0);

	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(c >= 0);
		CHECK(connect(c, (struct sockaddr *)&addr, alen) == 0);
		struct sockaddr_un peer;
		socklen_t plen = sizeof(peer);
		CHECK(getpeername(c, (struct sockaddr *)&peer, &plen) == 0 && plen == alen);
		for (int i = 0; i < 3; i++) {
			char msg[32], back[32] = {0};
			int n = snprintf(msg, sizeof(msg), "hello %d", i);
			CHECK(write(c, msg, n) == n);
			int got_n = 0;
			while (got_n < n) {
				int r = read(c, back + got_n, sizeof(back) - got_n);
				CHECK(r > 0);
				got_n += r;
			}
			CHECK(memcmp(msg, back, n) == 0);
		}
		close(c);
		_exit(0);
	}
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	int conn = accept(srv, (struct sockaddr *)&from, &flen);
	CHECK(conn >= 0);
	CHECK(flen == offsetof(struct sockaddr_un, sun_path)); /* the client is unnamed */
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	CHECK(getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && cred.pid == child);
	char buf[64];
	int n;
	while ((n = read(conn, buf, sizeof(buf))) > 0)
		CHECK(write(conn, buf, n) == n);
	CHECK(n == 0);
	int status;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(conn);
	close(srv);
	/* The name outlives the socket as a file: connecting to it is refused. */
	if (!abstract) {
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(connect(c, (struct sockaddr *)&addr, alen) == -1 && errno == ECONNREFUSED);
		CHECK(unlink(name) == 0);
		CHECK(connect(c, (struct sockaddr *)&addr, alen) == -1 && errno == ENOENT);
		close(c);
	} else {
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(connect(c, (struct sockaddr *)&addr, alen) == -1 && errno == ECONNREFUSED);
		close(c);
	}
}

int main(void)
{
	echo_round("/tmp/echo.sock", 0);
	echo_round("kvmsandbox-echo", 1);
	printf("unix_server ok\n");
	return 0;
}
