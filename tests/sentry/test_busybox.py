"""busybox-static (Debian) shell scripts and utilities run in the sandbox on every usable platform."""

from __future__ import annotations

import pytest

BUSYBOX = "/bin/busybox"


def sh(script: str) -> list[str]:
    return [BUSYBOX, "sh", "-c", script]


@pytest.mark.parametrize(
    ("script", "out", "code"),
    [
        ("echo hello; exit 7", "hello\n", 7),
        ("echo a b c | busybox tr ' ' '\\n' | busybox sort -r | busybox head -n 2", "c\nb\n", 0),
        ('x=$(echo inner; echo more); echo "[$x]"', "[inner\nmore]\n", 0),
        ("(cd /; exit 3); echo sub=$?", "sub=3\n", 0),
        ("i=0; while [ $i -lt 5 ]; do i=$((i+1)); done; for w in x y; do echo $w$i; done", "x5\ny5\n", 0),
        ("false || echo or; true && echo and; ! false; echo $?", "or\nand\n0\n", 0),
        ("trap 'echo trapped' USR1; kill -USR1 $$; echo after", "trapped\nafter\n", 0),
        ("trap 'echo bye' EXIT; exit 4", "bye\n", 4),
        ("busybox sleep 0.2 & busybox sleep 0.1 & wait; echo waited", "waited\n", 0),
        ("(exit 5) & wait $!; echo status=$?", "status=5\n", 0),
        ("busybox sleep 10 & kill -TERM $!; wait $!; echo status=$?", "status=143\n", 0),
        ("busybox sh -c 'kill -KILL $$'; echo status=$?", "status=137\n", 0),
        ("echo $(( $(echo 6) * 7 ))", "42\n", 0),
        ('f() { echo "f:$1"; return 2; }; f arg; echo rc=$?', "f:arg\nrc=2\n", 0),
        ("echo data > /tmp/x && busybox cat /tmp/x && busybox rm /tmp/x", "data\n", 0),
        ("busybox dmesg | busybox head -n 1 | busybox cut -c 16-", "Starting kvmsandbox...\n", 0),
        ("busybox uname -r -m", "4.4.0 x86_64\n", 0),
    ],
)
def test_shell(sandbox_run, script, out, code):
    r = sandbox_run(sh(script))
    assert (r.out, r.code) == (out, code), r.err


def test_utilities_over_files(sandbox_run, data_dir):
    d = data_dir
    script = f"""
        cd {d}
        busybox ls
        busybox cat fruits.txt | busybox wc -l
        busybox grep -c apple fruits.txt
        busybox sed -n 's/^\\(cherry\\) .*/\\1!/p' fruits.txt
        busybox awk '{{s += $2}} END {{print s}}' fruits.txt
        busybox sort -k2 -n fruits.txt | busybox head -n 1
        busybox tail -n 1 sub/notes.txt
        busybox cut -d: -f2 sub/more.log | busybox tr '\\n' ' '; echo
        busybox find . -name '*.txt' | busybox sort
    """
    r = sandbox_run(sh(script))
    assert r.code == 0, r.err
    assert r.out == (
        "fruits.txt\nsub\n4\n2\ncherry!\n22\napple 2\nthree\ny 2 \n./fruits.txt\n./sub/notes.txt\n"
    )
