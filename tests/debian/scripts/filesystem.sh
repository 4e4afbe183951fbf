# Coreutils, tar, findutils and util-linux over the overlay root; "## name" starts each section.
set -e
section() { echo "## $1"; }
section uname; uname -r
section dmesg; dmesg | head
section ls; ls -la /
section stat; stat -c '%n %s %a %u %g %F %Y' /etc/passwd /etc/debian_version
section cp; cp -a /etc /etc.copy; stat -c '%n %s %a %u %g %F %Y' /etc.copy/passwd /etc.copy/debian_version
diff -r /etc /etc.copy && echo identical
section mv; mv /etc.copy /etc.moved; test ! -e /etc.copy; ls -A /etc.moved | wc -l; ls -A /etc | wc -l
section sort; sort -t: -k3,3n /etc/passwd | cut -d: -f1
section tar; tar cf - /etc 2>/dev/null | tar tf -
section df; df -P /
section find; find /usr -name '*.so*' | wc -l
# Not the last command: bash -c execs its last command in place, so the reader would be the writer.
section written; echo "written by $$" > /kvmsb-written; bash -c 'cat /kvmsb-written; echo "reader $$ child of $PPID"'
section sha256sum; sha256sum /etc/passwd /usr/bin/python3
