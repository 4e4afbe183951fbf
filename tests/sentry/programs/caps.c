/* Capability sets inside the sandbox: /proc/self/status, prctl(PR_CAP_AMBIENT), capset, setresuid
 * and execve's rules. Modes (argv[1]):
 *   status  print the Cap* lines of /proc/self/status
 *   prctl   exercise PR_CAP_AMBIENT / PR_CAPBSET_* and print one result per line
 *   chain   print the sets, exec "clear", which prints them, clears the ambient set and execs "status"
 *   keepcaps PR_SET_KEEPCAPS across setresuid to a non-root uid, then exec "status"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void status(const char *tag) {
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        perror("status");
        return;
    }
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cap", 3))
            printf("%s %s", tag, line);
    fclose(f);
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s=%s\n", what, strerrorname_np(errno));
    else
        printf("%s=%ld\n", what, r);
}

static long amb(int op, long cap) { return prctl(PR_CAP_AMBIENT, op, cap, 0, 0); }

static int set_inheritable(int cap, int on) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return -1;
    if (on)
        d[cap / 32].inheritable |= 1u << (cap % 32);
    else
        d[cap / 32].inheritable &= ~(1u << (cap % 32));
    return syscall(SYS_capset, &h, d);
}

static int set_effective(int cap) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return -1;
    d[0].effective = d[1].effective = 0;
    d[cap / 32].effective = 1u << (cap % 32);
    return syscall(SYS_capset, &h, d);
}

static void keepcaps_checks(void) {
    show("get_keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    show("set_keepcaps_2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
    show("set_keepcaps", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    show("get_keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    show("setresuid", syscall(SYS_setresuid, 1000, 1000, 1000));
    status("kept");
    show("capset_eff_nbs", set_effective(CAP_NET_BIND_SERVICE));
    status("raised");
}

static void prctl_checks(void) {
    show("is_set_kill", amb(PR_CAP_AMBIENT_IS_SET, CAP_KILL));
    show("is_set_nbs", amb(PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE));
    show("raise_nbs", amb(PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE));
    show("is_set_nbs", amb(PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE));
    show("raise_chown", amb(PR_CAP_AMBIENT_RAISE, CAP_CHOWN));
    show("raise_bad", amb(PR_CAP_AMBIENT_RAISE, 99));
    show("bad_op", amb(99, CAP_KILL));
    show("clear_extra_arg", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
    show("lower_nbs", amb(PR_CAP_AMBIENT_LOWER, CAP_NET_BIND_SERVICE));
    show("is_set_nbs", amb(PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE));
    show("capset_drop_inh_kill", set_inheritable(CAP_KILL, 0));
    show("is_set_kill", amb(PR_CAP_AMBIENT_IS_SET, CAP_KILL));
    show("raise_nbs", amb(PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE));
    show("bset_drop_chown", prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0));
    show("bset_read_chown", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
    show("capset_inh_chown_outside_bset", set_inheritable(CAP_CHOWN, 1));
    show("capset_inh_fowner", set_inheritable(CAP_FOWNER, 1));
    show("setresuid", syscall(SYS_setresuid, 1000, 1000, 1000));
    show("is_set_nbs", amb(PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE));
    show("bset_drop_kill", prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "status";
    if (!strcmp(mode, "status")) {
        status("status");
        show("keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    } else if (!strcmp(mode, "keepcaps")) {
        keepcaps_checks();
        fflush(stdout);
        execl(argv[0], argv[0], "status", (char *)0);
        perror("exec");
        return 1;
    } else if (!strcmp(mode, "prctl")) {
        prctl_checks();
    } else if (!strcmp(mode, "chain")) {
        status("chain");
        fflush(stdout);
        execl(argv[0], argv[0], "clear", (char *)0);
        perror("exec");
        return 1;
    } else if (!strcmp(mode, "clear")) {
        status("clear");
        show("clear_all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
        fflush(stdout);
        execl(argv[0], argv[0], "status", (char *)0);
        perror("exec");
        return 1;
    }
    return 0;
}
