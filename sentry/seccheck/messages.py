"""Which protobuf message each header message type carries (common.proto's MessageType)."""

from __future__ import annotations

from google.protobuf.message import Message

from sentry.seccheck.proto import common_pb2, container_pb2, sentry_pb2, syscall_pb2

MESSAGE_CLASSES: dict[int, type[Message]] = {
    common_pb2.MESSAGE_CONTAINER_START: container_pb2.Start,
    common_pb2.MESSAGE_SENTRY_CLONE: sentry_pb2.CloneInfo,
    common_pb2.MESSAGE_SENTRY_EXEC: sentry_pb2.ExecveInfo,
    common_pb2.MESSAGE_SENTRY_EXIT_NOTIFY_PARENT: sentry_pb2.ExitNotifyParentInfo,
    common_pb2.MESSAGE_SENTRY_TASK_EXIT: sentry_pb2.TaskExit,
    common_pb2.MESSAGE_SENTRY_MMAP: sentry_pb2.MmapInfo,
    common_pb2.MESSAGE_SYSCALL_RAW: syscall_pb2.Syscall,
    common_pb2.MESSAGE_SYSCALL_OPEN: syscall_pb2.Open,
    common_pb2.MESSAGE_SYSCALL_CLOSE: syscall_pb2.Close,
    common_pb2.MESSAGE_SYSCALL_READ: syscall_pb2.Read,
    common_pb2.MESSAGE_SYSCALL_CONNECT: syscall_pb2.Connect,
    common_pb2.MESSAGE_SYSCALL_EXECVE: syscall_pb2.Execve,
    common_pb2.MESSAGE_SYSCALL_SOCKET: syscall_pb2.Socket,
    common_pb2.MESSAGE_SYSCALL_CHDIR: syscall_pb2.Chdir,
    common_pb2.MESSAGE_SYSCALL_SETID: syscall_pb2.Setid,
    common_pb2.MESSAGE_SYSCALL_SETRESID: syscall_pb2.Setresid,
    common_pb2.MESSAGE_SYSCALL_PRLIMIT64: syscall_pb2.Prlimit,
    common_pb2.MESSAGE_SYSCALL_PIPE: syscall_pb2.Pipe,
    common_pb2.MESSAGE_SYSCALL_FCNTL: syscall_pb2.Fcntl,
    common_pb2.MESSAGE_SYSCALL_DUP: syscall_pb2.Dup,
    common_pb2.MESSAGE_SYSCALL_SIGNALFD: syscall_pb2.Signalfd,
    common_pb2.MESSAGE_SYSCALL_CHROOT: syscall_pb2.Chroot,
    common_pb2.MESSAGE_SYSCALL_EVENTFD: syscall_pb2.Eventfd,
    common_pb2.MESSAGE_SYSCALL_CLONE: syscall_pb2.Clone,
    common_pb2.MESSAGE_SYSCALL_BIND: syscall_pb2.Bind,
    common_pb2.MESSAGE_SYSCALL_ACCEPT: syscall_pb2.Accept,
    common_pb2.MESSAGE_SYSCALL_TIMERFD_CREATE: syscall_pb2.TimerfdCreate,
    common_pb2.MESSAGE_SYSCALL_TIMERFD_SETTIME: syscall_pb2.TimerfdSetTime,
    common_pb2.MESSAGE_SYSCALL_TIMERFD_GETTIME: syscall_pb2.TimerfdGetTime,
    common_pb2.MESSAGE_SYSCALL_FORK: syscall_pb2.Fork,
    common_pb2.MESSAGE_SYSCALL_INOTIFY_INIT: syscall_pb2.InotifyInit,
    common_pb2.MESSAGE_SYSCALL_INOTIFY_ADD_WATCH: syscall_pb2.InotifyAddWatch,
    common_pb2.MESSAGE_SYSCALL_INOTIFY_RM_WATCH: syscall_pb2.InotifyRmWatch,
    common_pb2.MESSAGE_SYSCALL_SOCKETPAIR: syscall_pb2.SocketPair,
    common_pb2.MESSAGE_SYSCALL_WRITE: syscall_pb2.Write,
    common_pb2.MESSAGE_SYSCALL_MMAP: syscall_pb2.Mmap,
    common_pb2.MESSAGE_SYSCALL_LISTEN: syscall_pb2.Listen,
    common_pb2.MESSAGE_SYSCALL_PTRACE: syscall_pb2.Ptrace,
}
