"""Files that turn kernel events into reads: timerfd, signalfd, inotify (eventfd and epoll are in vfs/fs)."""
