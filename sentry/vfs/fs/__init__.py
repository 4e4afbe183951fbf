"""Filesystem implementations: gofer-backed, tmpfs, devfs, procfs, pipes and host stdio."""
