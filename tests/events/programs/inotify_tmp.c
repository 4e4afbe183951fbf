/* inotify: a watched file in /tmp modified by a child, and a watched directory's creations/deletions. */
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static struct inotify_event *next_event(int fd, char *buf, size_t size)
{
	ssize_t n = read(fd, buf, size);
	CHECK(n >= (ssize_t)sizeof(struct inotify_event));
	return (struct inotify_event *)buf;
}

int main(void)
{
	char buf[4096] __attribute__((aligned(8)));
	unlink("/tmp/new-file");
	int f = open("/tmp/watched.log", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CHECK(f >= 0);
	int in = inotify_init1(IN_CLOEXEC);
	CHECK(in >= 0);
	int wd = inotify_add_watch(in, "/tmp/watched.log", IN_MODIFY | IN_DELETE_SELF);
	CHECK(wd >= 1);
	CHECK(inotify_add_watch(in, "/tmp/watched.log", IN_MODIFY | IN_MASK_CREATE) == -1 && errno == EEXIST);
	CHECK(inotify_add_watch(in, "/tmp/no-such", IN_MODIFY) == -1 && errno == ENOENT);
	CHECK(inotify_add_watch(in, "/tmp/watched.log", IN_MODIFY | IN_ONLYDIR) == -1 && errno == ENOTDIR);

	pid_t child = fork();
	if (child == 0) {
		usleep(50000);
		CHECK(write(f, "line\n", 5) == 5);
		_exit(0);
	}
	struct pollfd pfd = {.fd = in, .events = POLLIN};
	CHECK(poll(&pfd, 1, 5000) == 1);
	struct inotify_event *ev = next_event(in, buf, sizeof(buf));
	CHECK(ev->wd == wd && (ev->mask & IN_MODIFY) && ev->len == 0);
	waitpid(child, NULL, 0);

	int dwd = inotify_add_watch(in, "/tmp", IN_CREATE | IN_DELETE);
	CHECK(dwd >= 1 && dwd != wd);
	int g = open("/tmp/new-file", O_CREAT | O_WRONLY, 0644);
	CHECK(g >= 0);
	ev = next_event(in, buf, sizeof(buf));
	CHECK(ev->wd == dwd && (ev->mask & IN_CREATE) && strcmp(ev->name, "new-file") == 0);
	CHECK(ev->len % 16 == 0);
	CHECK(unlink("/tmp/watched.log") == 0);
	close(f);
	/* The file watch reports its deletion and goes away; the directory sees the name go. */
	int seen_delete_self = 0, seen_ignored = 0, seen_delete = 0;
	for (int round = 0; round < 10 && !(seen_delete_self && seen_ignored && seen_delete); round++) {
		ssize_t n = read(in, buf, sizeof(buf));
		CHECK(n > 0);
		for (char *p = buf; p < buf + n;) {
			ev = (struct inotify_event *)p;
			if (ev->wd == wd && (ev->mask & IN_DELETE_SELF))
				seen_delete_self = 1;
			if (ev->wd == wd && (ev->mask & IN_IGNORED))
				seen_ignored = 1;
			if (ev->wd == dwd && (ev->mask & IN_DELETE) && strcmp(ev->name, "watched.log") == 0)
				seen_delete = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	CHECK(seen_delete_self && seen_ignored && seen_delete);
	/* A rename within the directory: IN_MOVED_FROM and IN_MOVED_TO sharing a cookie. */
	CHECK(inotify_add_watch(in, "/tmp", IN_MOVE | IN_MASK_ADD) == dwd);
	unlink("/tmp/renamed");
	CHECK(rename("/tmp/new-file", "/tmp/renamed") == 0);
	uint32_t from_cookie = 0, to_cookie = 0;
	for (int round = 0; round < 10 && !(from_cookie && to_cookie); round++) {
		ssize_t n = read(in, buf, sizeof(buf));
		CHECK(n > 0);
		for (char *p = buf; p < buf + n;) {
			ev = (struct inotify_event *)p;
			if ((ev->mask & IN_MOVED_FROM) && strcmp(ev->name, "new-file") == 0)
				from_cookie = ev->cookie;
			if ((ev->mask & IN_MOVED_TO) && strcmp(ev->name, "renamed") == 0)
				to_cookie = ev->cookie;
			p += sizeof(*ev) + ev->len;
		}
	}
	CHECK(from_cookie != 0 && from_cookie == to_cookie);
	unlink("/tmp/renamed");
	CHECK(inotify_rm_watch(in, dwd) == 0);
	CHECK(inotify_rm_watch(in, dwd) == -1 && errno == EINVAL);
	/* Events queued before the removal may come first; IN_IGNORED is the watch's last word. */
	int ignored = 0;
	for (int round = 0; round < 10 && !ignored; round++) {
		ssize_t n = read(in, buf, sizeof(buf));
		CHECK(n > 0);
		for (char *p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (struct inotify_event *)p;
			ignored |= ev->wd == dwd && (ev->mask & IN_IGNORED);
		}
	}
	CHECK(ignored);
	printf("inotify_tmp ok\n");
	return 0;
}
