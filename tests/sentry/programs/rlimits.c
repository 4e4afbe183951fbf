/* rlimits as Linux checks and enforces them: NOFILE bounds new fds, the hard limit rises only with
 * CAP_SYS_RESOURCE, NOFILE never above nr_open, and another process's limits need its ids.
 * Run as root with all capabilities; prints one result per line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s=%s\n", what, strerrorname_np(errno));
    else
        printf("%s=%ld\n", what, r);
    fflush(stdout);
}

static int set_nofile(rlim_t soft, rlim_t hard) {
    struct rlimit rl = {soft, hard};
    return setrlimit(RLIMIT_NOFILE, &rl);
}

int main(void) {
    show("nofile_above_nr_open", set_nofile(16, (1 << 20) + 1));
    show("nofile_infinity", set_nofile(16, RLIM_INFINITY));
    show("soft_above_hard", set_nofile(32, 16));
    show("nofile_16", set_nofile(16, 4096));
    int last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0)
        last = fd;
    show("open_past_limit", fd);
    show("last_fd", last);
    show("dup2_at_limit", dup2(0, 16));
    show("dupfd_at_limit", fcntl(0, F_DUPFD, 16));
    show("nofile_back_up", set_nofile(4096, 4096));
    show("open_again", open("/dev/null", O_RDONLY) >= 16 ? 1 : -1);

    pid_t child = fork();
    if (child == 0) {
        struct rlimit rl;
        show("child_setresuid", syscall(SYS_setresuid, 1000, 1000, 1000));
        show("raise_hard_unprivileged", set_nofile(4096, 8192));
        show("lower_hard_unprivileged", set_nofile(100, 200));
        show("prlimit_parent", prlimit(getppid(), RLIMIT_NOFILE, NULL, &rl));
        show("prlimit_self_by_pid", prlimit(getpid(), RLIMIT_NOFILE, NULL, &rl) == 0 ? (long)rl.rlim_max : -1);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    struct rlimit rl;
    show("root_prlimit_child_gone", prlimit(child, RLIMIT_NOFILE, NULL, &rl));
    return 0;
}
