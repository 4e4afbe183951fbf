"""The Sentry's virtual filesystem: mounts, dentries, open files and fd tables.

Filesystems live in fs/; syscall handlers that use this are in sentry/syscalls/.
"""
