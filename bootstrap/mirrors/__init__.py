"""Mirrors: host processes that stand for the sandbox's processes in host tools.

The app's processes exist only inside the Sentry, so `docker top` and `ctr
task ps` (which match host pids from `ps --format json` against host `ps`)
would find nothing of them. A mirror (mirror.c) is a do-nothing host process
carrying one app process's argv; pool.py keeps one per live app process, made
only when `ps --format json` asks.
"""
