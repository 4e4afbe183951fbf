"""The Sentry's virtual filesystem: mounts, dentries, open files and fd tables.

Filesystems live in fs/; syscall handlers that use this are in sentry/syscalls/
(fs.py, fd.py, poll.py, epoll.py).

Where issue 5 plugs in: an overlay root is one more Filesystem whose inodes
pair a tmpfs upper inode with a gofer lower one, copying up when a write-side
Inode method (create, mkdir, unlink, rename, truncate, chmod, ...) or a
writable open reaches a lower-only file; gofer writes become further Request
kinds in gofer.proto beside Walk/Open; file-backed mmap already reads through
FileDescription.pread, and GoferFile.host_fd is there for shared mappings.
"""
