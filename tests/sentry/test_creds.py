"""Credentials as an OCI spec sets them, seen from inside the sandbox."""

from __future__ import annotations

from sentry.kernel.creds import CAP_CHOWN, CAP_KILL, CAP_SETUID, Credentials


def test_from_oci():
    creds = Credentials.from_oci(
        {"uid": 1000, "gid": 100, "additionalGids": [7, 5]},
        {"effective": ["CAP_KILL", "CAP_NO_SUCH"], "bounding": ["CAP_KILL", "CAP_SETUID"]},
    )
    assert (creds.ruid, creds.euid, creds.rgid, creds.groups) == (1000, 1000, 100, (5, 7))
    assert creds.has_cap(CAP_KILL) and not creds.has_cap(CAP_SETUID)
    assert creds.cap_bounding == 1 << CAP_KILL | 1 << CAP_SETUID


def test_unprivileged_user_in_the_sandbox(sandbox_run):
    creds = Credentials.from_oci({"uid": 1000, "gid": 100, "additionalGids": [5]}, None)
    script = "busybox id -u; busybox id -g; busybox id -G; kill -0 1 && echo self-ok"
    r = sandbox_run(["/bin/busybox", "sh", "-c", script], creds=creds)
    assert (r.code, r.out) == (0, "1000\n100\n100 5\nself-ok\n"), r.err


CAP_NET_BIND_SERVICE = 10
KILL, NBS = 1 << CAP_KILL, 1 << CAP_NET_BIND_SERVICE


def _status(out: str, tag: str) -> dict[str, int]:
    rows = (line.split(None, 2)[1:] for line in out.splitlines() if line.startswith(tag + " "))
    return {key.rstrip(":"): int(value, 16) for key, value in rows}


def test_ambient_set_and_prctl_follow_linux(sandbox_run, program):
    creds = Credentials(cap_inheritable=KILL | NBS).with_ambient(KILL)
    r = sandbox_run([program("caps"), "prctl"], creds=creds)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "is_set_kill=1",
        "is_set_nbs=0",
        "raise_nbs=0",
        "is_set_nbs=1",
        "raise_chown=EPERM",  # not inheritable
        "raise_bad=EINVAL",
        "bad_op=EINVAL",
        "clear_extra_arg=EINVAL",
        "lower_nbs=0",
        "is_set_nbs=0",
        "capset_drop_inh_kill=0",
        "is_set_kill=0",  # capset keeps ambient within permitted & inheritable
        "raise_nbs=0",
        "bset_drop_chown=0",
        "bset_read_chown=0",
        "capset_inh_chown_outside_bset=EPERM",
        "capset_inh_fowner=0",
        "setresuid=0",
        "is_set_nbs=0",  # leaving uid 0 altogether clears the ambient set
        "bset_drop_kill=EPERM",  # and every other capability
    ]


def test_ambient_capabilities_survive_execve_for_a_non_root_user(sandbox_run, program):
    bounding = KILL | NBS | 1 << CAP_CHOWN
    creds = Credentials.for_user(1000, 1000).replace(
        cap_permitted=KILL | NBS, cap_effective=KILL | NBS, cap_inheritable=KILL | NBS, cap_bounding=bounding
    )
    r = sandbox_run([program("caps"), "chain"], creds=creds.with_ambient(KILL))
    assert r.code == 0, r.err
    after_exec = {"CapInh": KILL | NBS, "CapPrm": KILL, "CapEff": KILL, "CapBnd": bounding, "CapAmb": KILL}
    assert _status(r.out, "chain") == after_exec  # the first exec (the container's) already applies
    assert _status(r.out, "clear") == after_exec
    assert "clear_all=0" in r.out.splitlines()
    assert _status(r.out, "status") == {**after_exec, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}


def test_spec_ambient_outside_permitted_and_inheritable_is_dropped():
    creds = Credentials.from_oci(
        {"uid": 0, "gid": 0},
        {
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL", "CAP_CHOWN"],
        },
    )
    assert creds.cap_ambient == KILL


def test_keepcaps_keeps_the_permitted_set_across_setuid_until_exec(sandbox_run, program):
    r = sandbox_run([program("caps"), "keepcaps"])
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert [line for line in lines if "=" in line] == [
        "get_keepcaps=0",
        "set_keepcaps_2=EINVAL",
        "set_keepcaps=0",
        "get_keepcaps=1",
        "setresuid=0",
        "capset_eff_nbs=0",
        "keepcaps=0",  # execve clears it
    ]
    everything = (1 << 41) - 1
    assert (_status(r.out, "kept")["CapPrm"], _status(r.out, "kept")["CapEff"]) == (everything, 0)
    assert _status(r.out, "raised")["CapEff"] == NBS
    assert (_status(r.out, "status")["CapPrm"], _status(r.out, "status")["CapEff"]) == (0, 0)
