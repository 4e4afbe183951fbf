"""The Sentry's virtual filesystem: mounts, dentries, open files and fd tables.

Filesystems live in fs/: the root is an overlay (fs/overlay.py: a tmpfs upper
layer over the read-only gofer, fs/gofer.py) or, with --overlay2=none, the
gofer root written through; tmpfs, devfs with devpts, procfs and sysfs are
mounted beside it (boot.py). Rules shared by every filesystem are modules of
their own: permissions.py (credentials and capabilities), xattr.py, locks.py
(flock/POSIX/OFD locks). Syscall handlers that use this are in
sentry/syscalls/ (fs.py, fd.py, filelocks.py, poll.py, epoll.py); what other
parts of the Sentry may call is in sentry/CONTRACT.md, "Files, issue 5".
"""
