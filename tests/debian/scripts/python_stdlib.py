"""Threads, a three-process subprocess pipeline and hashlib: what python3-minimal has. Output depends on
nothing but the interpreter and coreutils, so the host's python3 must print the same lines."""

import hashlib
import os
import subprocess
import threading

# Eight threads meet at a barrier, then add their partial sums under a lock.
barrier = threading.Barrier(8)
lock = threading.Lock()
total = 0
idents = set()


def work(i: int) -> None:
    global total
    part = sum(range(i * 100_000, (i + 1) * 100_000))
    barrier.wait(timeout=30)
    with lock:
        total += part
        idents.add(threading.get_native_id())


threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", len(idents), "distinct tids, sum", total, "pid among tids", os.getpid() in idents)

# printf | sort | uniq -c, wired by pipes as a shell would.
p1 = subprocess.Popen(["printf", r"b\na\nc\na\nb\na\n"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["sort"], stdin=p1.stdout, stdout=subprocess.PIPE)
p3 = subprocess.Popen(["uniq", "-c"], stdin=p2.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
p2.stdout.close()
out = p3.communicate(timeout=30)[0].decode()
codes = [p.wait(timeout=30) for p in (p1, p2, p3)]
print("pipeline", [line.split() for line in out.splitlines()], "exit codes", codes)
print("pipeline pids distinct", len({os.getpid(), p1.pid, p2.pid, p3.pid}))
print("run", subprocess.run(["sh", "-c", "echo $((6 * 7)); exit 5"], capture_output=True, text=True))

h = hashlib.sha256()
for i in range(10_000):
    h.update(str(i).encode())
print("sha256", h.hexdigest())
print("sha1", hashlib.sha1(b"kvmsandbox" * 1000).hexdigest())
print("md5", hashlib.md5(b"").hexdigest())
print("blake2b", hashlib.blake2b(b"debian", digest_size=16).hexdigest())
print("sha3_256", hashlib.sha3_256(b"bookworm").hexdigest())
